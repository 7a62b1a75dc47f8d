"""Beats, downbeats and a beatgrid of one recording, in memory: :func:`analyze`.

:func:`analyze` takes a file path or a signal, runs the trained networks (:class:`Models`,
loaded once by :func:`load_models` and reused for every call) and decodes their ``[T, 2]``
activations with one inference method (:data:`beatgrid.methods.METHODS`) into an
:class:`Analysis`. :func:`decode` does the second half alone, e.g. on activations saved by
``beatgrid predict --save-activations``, without the network.

Next to the method's beats, every analysis carries a constant-tempo :class:`Beatgrid`
(fitted to the same activations; for the ``*_grid`` methods it *is* the result), which is
what DJ software stores. There is none when there is no tempo to report: silent audio, or
a grid whose confidence is below ``min_confidence``; ``Analysis.reason`` then says why.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UsageError
from .decoding.grid import Beatgrid
from .inference import beats_label, run_method
from .methods import DEFAULT_METHOD, GRID, Prediction, Settings, get_method

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # torch is imported when models are loaded
    import torch
    from torch import nn

    from .features import MelConfig

__all__ = ["Analysis", "Models", "analyze", "check_settings", "decode", "load_models", "models_folder",
           "DEFAULT_MIN_CONFIDENCE", "MIN_DURATION_S", "SILENCE_DBFS"]

#: Shortest signal analysed (seconds): a beat needs at least a beat period of context.
MIN_DURATION_S = 1.0
#: A signal whose peak stays below this level (dB full scale) is silent: no beats, no tempo.
SILENCE_DBFS = -60.0
#: Beatgrid confidence below which no tempo is reported. With the shipped synth-v2, noise
#: (white, pink-ish, amplitude-modulated, quiet) reaches at most 0.017 (a sine sweep 0.09);
#: 7 of the 42 real clips of ../shared/realdata fall below 0.05, 5 of them with a wrong tempo
#: (benchmarks/RESULTS.md, section 7).
DEFAULT_MIN_CONFIDENCE = 0.05


@dataclass(frozen=True)
class Models:
    """The trained networks of one models folder, on one device.

    ``crnn_pos_weight`` / ``ltm_pos_weight``: each network's training positive weight
    (beat, downbeat), which the DBN and the grid undo (:func:`beatgrid.decoding.peaks.calibrate`).
    """

    crnn: nn.Module
    ltm: nn.Module | None
    mel_config: MelConfig
    device: torch.device
    folder: Path  #: the models folder (``<folder>/crnn/model.pt``)
    crnn_pos_weight: list[float] | None = None
    ltm_pos_weight: list[float] | None = None

    @property
    def crnn_causal(self) -> bool:
        """Whether the CRNN looks only at past frames (``crnn.causal: true``; the shipped one is bidirectional)."""
        return bool(getattr(self.crnn, "causal", False))

    @property
    def fps(self) -> float:
        """Frames per second of the activations."""
        return self.mel_config.fps

    def pos_weight(self, method: str) -> list[float] | None:
        """The positive weight of the network whose outputs ``method`` decodes."""
        return self.ltm_pos_weight if get_method(method).source == "ltm" else self.crnn_pos_weight


def check_settings(method: str, bpm_min: float, bpm_max: float, min_confidence: float = 0.0) -> None:
    """Refuse unusable settings before any audio is decoded; raises :class:`UsageError`."""
    try:
        get_method(method)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not (0 < bpm_min < bpm_max and math.isfinite(bpm_max)):
        raise UsageError(f"need 0 < bpm_min < bpm_max, got bpm_min={bpm_min:g}, bpm_max={bpm_max:g}")
    if not 0.0 <= min_confidence <= 1.0:
        raise UsageError(f"min_confidence must be in [0, 1], got {min_confidence:g}")


def models_folder(models: str | os.PathLike | None = None) -> Path:
    """The folder that ``models`` names: None (the shipped default model), a shipped model's
    name or ``pretrained:<name>``, or a folder path (returned as it is).

    Raises:
        PretrainedModelError: ``models`` is neither an existing folder nor a shipped model.
    """
    from . import pretrained

    text = pretrained.PREFIX + pretrained.DEFAULT_NAME if models is None else str(models)
    path = Path(text)
    if text.startswith(pretrained.PREFIX) or not (path.exists() or "/" in text or os.sep in text):
        try:
            return pretrained.models_dir(text)
        except pretrained.PretrainedModelError as exc:
            what = "" if text.startswith(pretrained.PREFIX) else f"{text!r} is neither a folder nor a shipped model: "
            raise pretrained.PretrainedModelError(
                f"{what}{exc}; a models folder holding crnn/model.pt works too (results/models after "
                "a workflow run)") from None
    return path


def load_models(models: str | os.PathLike | None = None, method: str = DEFAULT_METHOD,
                device: str = "auto") -> Models:
    """Load the networks of ``models``: a shipped model's name, ``pretrained:<name>``, or a
    folder with ``crnn/model.pt`` and (required by ``ltm_*`` methods) ``ltm/model.pt``.

    ``None`` is the shipped default model (:func:`beatgrid.pretrained.models_dir`). The LTM
    is loaded whenever the folder has one, so the result serves every method.

    Raises:
        PretrainedModelError: no such shipped model (the message lists those there are).
        ModelFileError: a model file is missing or unreadable.
        DeviceUnavailableError: ``device`` is not available (e.g. ``cuda`` on a CPU-only torch).
        UsageError: ``method`` is unknown.
    """
    from .errors import ModelFileError
    from .features import MelConfig
    from .inference import warn_uncalibrated
    from .models import load_model
    from .device import resolve_device

    check_settings(method, Settings.bpm_min, Settings.bpm_max)
    torch_device = resolve_device(device)
    folder = models_folder(models)
    crnn_path, ltm_path = folder / "crnn" / "model.pt", folder / "ltm" / "model.pt"
    crnn, crnn_meta = load_model(crnn_path, map_location=torch_device)
    if not crnn_meta.get("features"):
        raise ModelFileError(f"{crnn_path}: the model does not record the mel features it was trained on")
    ltm, ltm_meta = None, {}
    reads_ltm = get_method(method).source == "ltm"
    if reads_ltm or ltm_path.is_file():
        ltm, ltm_meta = load_model(ltm_path, map_location=torch_device)
    meta, meta_path = (ltm_meta, ltm_path) if reads_ltm else (crnn_meta, crnn_path)
    if "pos_weight" not in meta:
        warn_uncalibrated(method, str(meta_path))
    return Models(crnn=crnn, ltm=ltm, mel_config=MelConfig.from_dict(crnn_meta["features"]),
                  device=torch_device, folder=Path(folder), crnn_pos_weight=crnn_meta.get("pos_weight"),
                  ltm_pos_weight=ltm_meta.get("pos_weight"))


@dataclass(frozen=True)
class Analysis:
    """Beats, downbeats and beatgrid of one recording (times in seconds).

    Attributes:
        beats: beat times (s) of ``method``.
        beat_positions: position of each beat in its bar (1 = downbeat, 0 = unknown).
        beatgrid: the constant-tempo grid, or None when there is no tempo to report (``reason``).
        activations: ``[T, 2]`` beat/downbeat probabilities of the network at ``fps``
            (as the network gives them; the decoders calibrate them with ``pos_weight``).
        fps: frames per second of ``activations``.
        duration_s: length of the recording (s).
        method: the inference method that gave ``beats``.
        pos_weight: the network's training positive weight (beat, downbeat), or None.
        reason: why there is no tempo (``beatgrid`` is None), else None.
        label: the label JSON (``fileName``, ``bpm``, ``downbeatOffset``, ``duration``,
            ``beatsPerBar``, ``confidence``; ``bpm`` None with ``reason`` when there is no tempo).
    """

    beats: np.ndarray
    beat_positions: np.ndarray
    beatgrid: Beatgrid | None
    activations: np.ndarray
    fps: float
    duration_s: float
    method: str
    pos_weight: list[float] | None = None
    reason: str | None = None
    label: dict[str, Any] = field(default_factory=dict)

    @property
    def downbeats(self) -> np.ndarray:
        """Downbeat times (s): the beats at bar position 1."""
        return self.beats[self.beat_positions == 1]


def _no_beats() -> Prediction:
    return Prediction(np.empty(0), np.empty(0, dtype=int))


def decode(
    activations: np.ndarray,
    fps: float,
    duration_s: float | None = None,
    method: str = DEFAULT_METHOD,
    *,
    pos_weight: list[float] | float | None = None,
    bpm_min: float = Settings.bpm_min,
    bpm_max: float = Settings.bpm_max,
    peak_threshold: float = Settings.peak_threshold,
    online_threshold: float = Settings.online_threshold,
    min_confidence: float = 0.0,
    silent: bool = False,
    file_name: str = "",
) -> Analysis:
    """Decode ``[T, 2]`` activations at ``fps`` with ``method`` into an :class:`Analysis`.

    ``duration_s`` defaults to ``T / fps``; ``silent`` marks silent audio (no beats, no tempo).
    """
    from .decoding.grid import fit_beatgrid
    from .decoding.peaks import activation_pair, calibrate

    check_settings(method, bpm_min, bpm_max, min_confidence)
    activations = activation_pair(activations)
    duration_s = float(len(activations) / fps if duration_s is None else duration_s)
    if silent:
        prediction = _no_beats()
        grid, reason = None, f"silent audio (peak level below {SILENCE_DBFS:g} dBFS)"
    else:
        prediction = run_method(method, activations, fps, duration_s, bpm_min=bpm_min, bpm_max=bpm_max,
                                peak_threshold=peak_threshold, online_threshold=online_threshold,
                                pos_weight=pos_weight)
        grid = prediction.grid
        if grid is None:
            calibrated = calibrate(activations, pos_weight)
            grid = fit_beatgrid(calibrated[:, 0], fps, downbeat_activation=calibrated[:, 1],
                                bpm_min=bpm_min, bpm_max=bpm_max)
        reason = None
        if grid.confidence == 0.0:
            reason, grid = "no beat found (beatgrid confidence 0)", None
        elif grid.confidence < min_confidence:
            reason = f"no steady beat: beatgrid confidence {grid.confidence:.4f} is below {min_confidence:g}"
            grid = None
        if grid is None and get_method(method).decoder is GRID:  # its beats were the grid's
            prediction = _no_beats()
    label = beats_label(prediction, file_name, duration_s)
    if reason is not None:
        label.update(bpm=None, reason=reason)
        if get_method(method).decoder is GRID:
            label["gridSource"] = "fit_beatgrid"
    return Analysis(beats=np.asarray(prediction.beat_times, dtype=np.float64),
                    beat_positions=np.asarray(prediction.beat_positions, dtype=int), beatgrid=grid,
                    activations=activations, fps=float(fps), duration_s=duration_s, method=method,
                    pos_weight=None if pos_weight is None else list(np.atleast_1d(pos_weight).tolist()),
                    reason=reason, label=label)


@lru_cache(maxsize=None)
def _warn_not_causal_from_audio(method: str, folder: str) -> None:
    """Once per method and models folder: the beats are decided causally, but from the
    activations of a CRNN that has seen the whole track."""
    log.warning("%s decides each beat causally, but the CRNN in %s is bidirectional: its activations use the "
                "whole track, so these beats are not what a live stream would give (that needs a CRNN trained "
                "with crnn.causal: true)", method, folder)


@lru_cache(maxsize=4)
def _cached_models(models: str | None, device: str) -> Models:
    """:func:`load_models` once per (models, device), for ``analyze`` calls that name the models."""
    return load_models(models, DEFAULT_METHOD, device)


def _signal(audio: str | os.PathLike | np.ndarray, sr: int | None, target_sr: int) -> tuple[np.ndarray, str]:
    """Mono float32 at ``target_sr`` and a name for messages, from a path or an array."""
    from .audio import AudioError, load_audio

    if isinstance(audio, (str, os.PathLike)):
        if sr is not None:
            raise UsageError("sr is given for an array; a file's sample rate comes from the file")
        return load_audio(audio, target_sr), str(audio)
    if sr is None or sr <= 0:
        raise UsageError("analyze(array) needs its sample rate: sr=<Hz>")
    signal = np.asarray(audio, dtype=np.float32)
    if signal.ndim == 2:  # [n_samples, channels]
        signal = signal.mean(axis=1, dtype=np.float32)
    if signal.ndim != 1:
        raise UsageError(f"audio must be [n_samples] or [n_samples, channels], got shape {signal.shape}")
    if not np.isfinite(signal).all():
        raise AudioError("<array>", "audio contains non-finite samples (NaN or inf)")
    if int(sr) != target_sr:
        import soxr

        signal = soxr.resample(signal, int(sr), target_sr, quality="HQ").astype(np.float32)
    return signal, "<array>"


def analyze(
    audio: str | os.PathLike | np.ndarray,
    sr: int | None = None,
    models: Models | str | os.PathLike | None = None,
    method: str = DEFAULT_METHOD,
    *,
    device: str = "auto",
    bpm_min: float = Settings.bpm_min,
    bpm_max: float = Settings.bpm_max,
    peak_threshold: float = Settings.peak_threshold,
    online_threshold: float = Settings.online_threshold,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> Analysis:
    """Beats, downbeats and beatgrid of an audio file or of a signal.

    Args:
        audio: a file path (any format :func:`beatgrid.audio.load_audio` decodes), or
            samples ``[n]`` / ``[n, channels]`` in [-1, 1] at ``sr`` Hz.
        sr: sample rate of an array (Hz); not for paths.
        models: loaded :class:`Models`, a shipped model's name, a models folder, or None
            for the shipped default model (loaded once per name and device, then reused).
        method: inference method (:data:`beatgrid.methods.METHODS`).
        device: ``auto``, ``cpu`` or ``cuda`` (when ``models`` is not loaded yet).
        bpm_min, bpm_max: tempo range (BPM).
        peak_threshold, online_threshold: thresholds of the peak-picking methods.
        min_confidence: below this beatgrid confidence there is no tempo (``bpm`` None).

    Raises:
        AudioError: the file is unreadable, or the signal shorter than :data:`MIN_DURATION_S`.
        UsageError: unusable settings (checked before anything is decoded).
    """
    from .activations import compute_activations
    from .audio import AudioError
    from .features import log_mel

    check_settings(method, bpm_min, bpm_max, min_confidence)
    if not isinstance(models, Models):
        models = _cached_models(None if models is None else str(models), device)
    reads_ltm = get_method(method).source == "ltm"
    if reads_ltm and models.ltm is None:
        raise UsageError(f"{method} needs the LTM, and {models.folder} has no ltm/model.pt")
    if get_method(method).decoder.causal and not models.crnn_causal:
        _warn_not_causal_from_audio(method, str(models.folder))
    cfg = models.mel_config
    signal, name = _signal(audio, sr, cfg.sr)
    duration_s = len(signal) / cfg.sr
    if duration_s < MIN_DURATION_S:
        raise AudioError(name, f"audio too short: {duration_s * 1000:.0f} ms; beats need at least "
                               f"{MIN_DURATION_S:g} s")
    activations = compute_activations(models.crnn, log_mel(signal, cfg), device=models.device)
    if models.ltm is not None and reads_ltm:
        from .decoding.streaming import ltm_probabilities

        activations = ltm_probabilities(models.ltm, activations)
    peak = float(np.max(np.abs(signal))) if len(signal) else 0.0
    return decode(activations, models.fps, duration_s, method, pos_weight=models.pos_weight(method),
                  bpm_min=bpm_min, bpm_max=bpm_max, peak_threshold=peak_threshold,
                  online_threshold=online_threshold, min_confidence=min_confidence,
                  silent=peak < 10 ** (SILENCE_DBFS / 20), file_name=Path(name).name)

