"""Log-mel spectrograms and frame targets, and the per-shard jobs that store them.

The spectrogram is the one Beat This! trains on and publishes (Foscarin, Schlüter
& Widmer, ISMIR 2024; ``beat_this.preprocessing.LogMelSpect``), so its released
spectrogram bundles can be imported into the same store
(:mod:`beatgrid.beat_this_import`) and mixed with spectrograms computed here.

Frames are centred: frame ``t`` covers the window centred on sample ``t * hop_length``,
i.e. on ``t / fps`` seconds, and a signal of ``n`` samples has
``1 + n // hop_length`` frames (:func:`n_frames`). A beat at ``t`` seconds is on
frame ``round(t * fps)``.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.fft
from tqdm import tqdm

from beatgrid.annotations import Annotation
from beatgrid.data.tracks import truthy
from beatgrid.targets import render_targets

__all__ = [
    "FeatureError",
    "MelConfig",
    "BEAT_THIS_MEL_CONFIG",
    "log_mel",
    "mel_filterbank",
    "n_frames",
    "resampled_length",
    "audio_n_frames",
    "frame_targets",
    "compute_shard_mels",
    "write_track_targets",
    "compute_shard_targets",
]

log = logging.getLogger(__name__)

#: Largest disagreement (frames) tolerated between the decoded length of a track and
#: the length its header promises. soxr rounds exact half-sample output lengths
#: either way, which can move the frame count by one; anything larger means the
#: decoder and the header disagree and the track is rejected with an error.
FRAME_COUNT_TOLERANCE = 1


class FeatureError(RuntimeError):
    """A track's features or targets cannot be computed; the message names the
    track and its file."""


@dataclass(frozen=True)
class MelConfig:
    """Log-mel settings; the defaults are Beat This!'s (50 fps, 128 bands).

    ``sr`` Hz, ``hop_length`` and ``n_fft`` samples at ``sr``, ``fmin``/``fmax`` Hz.
    """

    sr: int = 22050
    hop_length: int = 441
    n_fft: int = 1024
    n_mels: int = 128
    fmin: float = 30.0
    fmax: float = 11000.0

    def __post_init__(self) -> None:
        for name in ("sr", "hop_length", "n_fft", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"MelConfig.{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("fmin", "fmax"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if not 0.0 <= self.fmin < self.fmax:
            raise ValueError(f"MelConfig needs 0 <= fmin < fmax, got fmin={self.fmin}, fmax={self.fmax}")
        if self.fmax > self.sr / 2:
            raise ValueError(f"MelConfig.fmax={self.fmax} Hz is above the Nyquist frequency {self.sr / 2} Hz")

    @property
    def fps(self) -> float:
        """Frames per second, ``sr / hop_length``."""
        return self.sr / self.hop_length

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MelConfig":
        """Build from a mapping such as ``config["features"]`` or an HDF5 store's attrs;
        keys that are not mel settings (``tracks_per_shard``, ``fps``) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: _plain(v) for k, v in values.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain Python values (without ``fps``)."""
        return asdict(self)

    def store_attrs(self) -> dict[str, Any]:
        """The attrs of a mel store: the settings plus ``fps``."""
        return {**self.as_dict(), "fps": self.fps}


#: The settings of Beat This!'s published spectrograms (``launch_scripts/preprocess_audio.py``).
BEAT_THIS_MEL_CONFIG = MelConfig(sr=22050, hop_length=441, n_fft=1024, n_mels=128, fmin=30.0, fmax=11000.0)


def _plain(value: Any) -> Any:
    """numpy scalars (as read from HDF5 attrs) to Python scalars."""
    return value.item() if isinstance(value, np.generic) else value


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (Auditory Toolbox): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3.0))


@functools.lru_cache(maxsize=8)
def _filterbank(cfg: MelConfig) -> np.ndarray:
    bin_hz = np.linspace(0.0, cfg.sr / 2, cfg.n_fft // 2 + 1)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    rising = (bin_hz[None, :] - edges_hz[:-2, None]) / np.diff(edges_hz)[:-1, None]
    falling = (edges_hz[2:, None] - bin_hz[None, :]) / np.diff(edges_hz)[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))  # [n_mels, n_bins], peak 1
    weights = np.ascontiguousarray(weights.T, dtype=np.float32)  # [n_bins, n_mels]
    weights.flags.writeable = False
    return weights


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]`` on Slaney's mel scale, each
    peaking at 1 (no area normalisation): ``librosa.filters.mel(htk=False, norm=None)``,
    which equals ``torchaudio.functional.melscale_fbanks(norm=None, mel_scale="slaney")``
    for even ``sr``. (Built here rather than with librosa, whose import costs a second
    per feature job.)"""
    return _filterbank(cfg).T.copy()


@functools.lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    """Periodic Hann window (``torch.hann_window(n_fft)``) divided by ``sqrt(n_fft)``,
    the ``normalized="frame_length"`` scaling."""
    n = np.arange(n_fft)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)) / np.sqrt(n_fft)
    window = window.astype(np.float32)
    window.flags.writeable = False
    return window


#: Frames transformed at once; bounds the memory of long tracks (~8 MB per block).
_BLOCK_FRAMES = 2048


def log_mel(audio: np.ndarray, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Log-magnitude mel spectrogram ``[T, n_mels]`` float32 of a mono signal at ``cfg.sr``.

    ``T = 1 + len(audio) // hop_length``; frame ``t`` is centred on ``t / fps`` s.
    The formula is Beat This!'s ``LogMelSpect`` (torchaudio ``MelSpectrogram`` with
    ``mel_scale="slaney"``, ``norm=None``, ``normalized="frame_length"``, ``power=1``):

    - pad ``n_fft // 2`` samples at both ends by reflection (``center=True``);
    - ``X[t, k] = sum_n x[t * hop + n] w[n] exp(-2j pi k n / n_fft) / sqrt(n_fft)``
      with the periodic Hann window ``w`` of length ``n_fft``;
    - ``M[t, m] = sum_k F[m, k] |X[t, k]|`` with the Slaney-scale triangular filters
      ``F`` between ``fmin`` and ``fmax``, each peaking at 1 (:func:`mel_filterbank`);
    - ``log_mel = log(1 + 1000 M)``.

    Raises:
        ValueError: ``audio`` is not a 1-D signal or is shorter than ``n_fft // 2 + 1``
            samples (reflection padding needs that many).
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"log_mel expects a mono 1-D signal, got shape {audio.shape}")
    if audio.size <= cfg.n_fft // 2:
        raise ValueError(
            f"signal of {audio.size} samples is too short for n_fft={cfg.n_fft} "
            f"(needs more than {cfg.n_fft // 2} samples)"
        )
    padded = np.pad(audio.astype(np.float32, copy=False), cfg.n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop_length]
    window, filterbank = _window(cfg.n_fft), _filterbank(cfg)
    out = np.empty((frames.shape[0], cfg.n_mels), dtype=np.float32)
    for start in range(0, frames.shape[0], _BLOCK_FRAMES):
        block = frames[start : start + _BLOCK_FRAMES] * window
        magnitude = np.abs(scipy.fft.rfft(block, axis=-1))
        np.matmul(magnitude, filterbank, out=out[start : start + _BLOCK_FRAMES])
    np.multiply(out, np.float32(1000.0), out=out)
    return np.log1p(out, out=out)


def n_frames(n_samples: int, hop_length: int) -> int:
    """Number of centred frames of a signal of ``n_samples`` samples: ``1 + n_samples // hop_length``."""
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    return 1 + int(n_samples) // int(hop_length)


def resampled_length(n_samples: int, sr_in: int, sr_out: int) -> int:
    """Length of a signal of ``n_samples`` at ``sr_in`` Hz resampled to ``sr_out`` Hz,
    ``round(n_samples * sr_out / sr_in)`` in exact integer arithmetic (halves up).

    This is the length soxr (used by :func:`beatgrid.audio.load_audio`) produces, except
    that soxr may round an exact half down; :data:`FRAME_COUNT_TOLERANCE` absorbs that.
    """
    n_samples, sr_in, sr_out = int(n_samples), int(sr_in), int(sr_out)
    if sr_in == sr_out:
        return n_samples
    return (2 * n_samples * sr_out + sr_in) // (2 * sr_in)


def audio_n_frames(path: str | os.PathLike, sr: int, hop_length: int) -> int:
    """Frame count of an audio file's spectrogram at ``sr`` Hz and ``hop_length``, from
    its header (no decoding where libsndfile reads the format).

    :func:`compute_shard_mels` stores exactly this many frames, so targets computed
    from it line up with the mels without the targets job reading the mel store.

    Raises:
        beatgrid.audio.AudioError: missing or unreadable file.
    """
    from beatgrid.audio import audio_info

    info = audio_info(path)
    return _frames_of(info, sr, hop_length)


def _frames_of(info: Any, sr: int, hop_length: int) -> int:
    """Frame count from a :class:`beatgrid.audio.AudioInfo` (native ``n_samples``, ``sr``)."""
    return n_frames(resampled_length(info.n_samples, info.sr, sr), hop_length)


def frame_targets(
    beat_times: np.ndarray,
    downbeat_times: np.ndarray,
    n_frames: int,
    fps: float,
    widen_frames: int = 1,
    widen_value: float = 0.5,
) -> np.ndarray:
    """Frame targets ``[n_frames, 2]`` float32 (column 0 beat, column 1 downbeat).

    An event at ``t`` seconds sets frame ``round(t * fps)`` (numpy rounding, halves to
    even, as Beat This!) to 1; the ``widen_frames`` frames on each side get
    ``widen_value`` unless another event already set them higher. Events whose frame
    falls outside ``[0, n_frames)`` are dropped; their widening still reaches into
    the track. ``beat_times`` should include the downbeats (as ``.beats`` files do).
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if widen_frames < 0:
        raise ValueError(f"widen_frames must be >= 0, got {widen_frames}")
    if not 0.0 <= widen_value <= 1.0:
        raise ValueError(f"widen_value must be in [0, 1], got {widen_value}")
    columns = []
    for times in (beat_times, downbeat_times):
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        frames = np.round(times[np.isfinite(times)] * fps).astype(np.int64)
        columns.append(render_targets(frames, n_frames, widen_frames, widen_value, widen_from_outside=True))
    return np.stack(columns, axis=1)


# --------------------------------------------------------------------------- shard jobs


def _conform_frames(mel: np.ndarray, expected: int, track_id: str, path: str) -> np.ndarray:
    """Trim or edge-pad ``mel`` to ``expected`` frames when it is off by at most
    :data:`FRAME_COUNT_TOLERANCE`; raise otherwise."""
    difference = mel.shape[0] - expected
    if difference == 0:
        return mel
    if abs(difference) > FRAME_COUNT_TOLERANCE:
        raise FeatureError(
            f"track {track_id!r} ({path}): decoded audio gives {mel.shape[0]} frames but its "
            f"header promises {expected}; the decoder and the header disagree"
        )
    if difference > 0:
        return mel[:expected]
    return np.concatenate([mel, np.repeat(mel[-1:], -difference, axis=0)], axis=0)


def _rows(tracks: pd.DataFrame, required: tuple[str, ...], what: str) -> pd.DataFrame:
    if tracks.empty:  # an empty shard, possibly from JSON without columns
        return pd.DataFrame(columns=list(required))
    missing = [c for c in required if c not in tracks.columns]
    if missing:
        raise ValueError(f"{what}: the track table lacks the column(s) {missing}")
    if tracks["track_id"].duplicated().any():
        duplicates = sorted(tracks.loc[tracks["track_id"].duplicated(), "track_id"].unique())
        raise ValueError(f"{what}: duplicate track_id(s) {duplicates[:5]}")
    return tracks


def compute_shard_mels(
    tracks: pd.DataFrame,
    out_path: str | os.PathLike,
    cfg: MelConfig = MelConfig(),
    progress: bool = True,
) -> None:
    """Write the log-mels of ``tracks`` (rows of ``tracks.csv``) to one HDF5 store.

    Layout: ``/tracks/<track_id>/mel`` float16 ``[T, n_mels]``, file attrs
    ``sr, hop_length, n_fft, n_mels, fmin, fmax, fps``. ``T`` equals
    :func:`audio_n_frames` of the file, which :func:`compute_shard_targets` uses. A
    track that cannot be decoded is left out with a warning and listed with its reason
    in the file attr ``dropped`` (:func:`beatgrid.data.store.read_dropped`); the index's
    decode check makes that rare. An empty table gives a valid empty store.
    """
    from beatgrid.audio import AudioError, load_audio
    from beatgrid.data.store import atomic_h5, record_dropped, write_track

    tracks = _rows(tracks, ("track_id", "audio_path"), "compute_shard_mels")
    dropped: dict[str, str] = {}
    with atomic_h5(out_path, attrs=cfg.store_attrs()) as h5:
        rows = tracks[["track_id", "audio_path"]].itertuples(index=False)
        for track_id, audio_path in tqdm(rows, total=len(tracks), desc=f"mels {Path(out_path).name}",
                                         unit="track", disable=not progress):
            try:
                try:
                    audio = load_audio(audio_path, cfg.sr)
                    expected = audio_n_frames(audio_path, cfg.sr, cfg.hop_length)
                    mel = log_mel(audio, cfg)
                except (AudioError, ValueError) as exc:
                    raise FeatureError(f"track {track_id!r}: cannot compute the log-mel of {audio_path}: {exc}") from exc
                mel = _conform_frames(mel, expected, track_id, str(audio_path))
            except FeatureError as exc:
                _drop(dropped, track_id, exc)
                continue
            write_track(h5, track_id, {"mel": mel.astype(np.float16)})
        record_dropped(h5, dropped)


def write_track_targets(h5: Any, track_id: str, annotation: Annotation, has_downbeats: bool, n_frames: int,
                        fps: float, widen_frames: int = 1, widen_value: float = 0.5) -> None:
    """One track of a target store: ``beat`` and ``downbeat`` :func:`frame_targets` ``[n_frames]``
    at ``fps`` and the annotated ``beat_times``/``downbeat_times`` (s); without
    ``has_downbeats`` the downbeat column is empty (the ``has_downbeats`` attr says so)."""
    from beatgrid.data.store import write_track

    downbeat_times = annotation.downbeat_times if has_downbeats else np.zeros(0)
    targets = frame_targets(annotation.beat_times, downbeat_times, n_frames, fps, widen_frames, widen_value)
    write_track(
        h5, track_id,
        {"beat": targets[:, 0], "downbeat": targets[:, 1],
         "beat_times": annotation.beat_times.astype(np.float64),
         "downbeat_times": np.asarray(downbeat_times, dtype=np.float64)},
        attrs={"has_downbeats": bool(has_downbeats)},
    )


def compute_shard_targets(
    tracks: pd.DataFrame,
    out_path: str | os.PathLike,
    sr: int = 22050,
    hop_length: int = 441,
    widen_frames: int = 1,
    widen_value: float = 0.5,
    progress: bool = True,
) -> None:
    """Write beat and downbeat frame targets of ``tracks`` (rows of ``tracks.csv``) to one
    HDF5 store, without decoding audio.

    Layout: ``/tracks/<track_id>/beat`` and ``/downbeat`` float32 ``[T]`` (see
    :func:`frame_targets`), ``/beat_times`` and ``/downbeat_times`` float64 seconds;
    per-track attr ``has_downbeats``; file attrs ``fps, sr, hop_length, widen_frames,
    widen_value``. ``T`` comes from the audio header (:func:`audio_n_frames`) and
    equals the mel store's. Tracks whose ``has_downbeats`` is false get an all-zero
    downbeat target and ``has_downbeats=False``, so training can mask them. A track
    whose annotation or audio header cannot be read is left out and listed in the file
    attr ``dropped``, as in :func:`compute_shard_mels`.
    """
    from beatgrid.annotations import AnnotationError, read_annotation
    from beatgrid.audio import AudioError, audio_info
    from beatgrid.data.store import atomic_h5, record_dropped

    tracks = _rows(tracks, ("track_id", "audio_path", "annotation_path", "annotation_format"),
                   "compute_shard_targets")
    fps = sr / hop_length
    attrs = {"fps": fps, "sr": int(sr), "hop_length": int(hop_length),
             "widen_frames": int(widen_frames), "widen_value": float(widen_value)}
    dropped: dict[str, str] = {}
    with atomic_h5(out_path, attrs=attrs) as h5:
        for row in tqdm(tracks.itertuples(index=False), total=len(tracks),
                        desc=f"targets {Path(out_path).name}", unit="track", disable=not progress):
            try:
                info = audio_info(row.audio_path)
                total_frames = _frames_of(info, sr, hop_length)
                # label grids are expanded over the audio, as the index validated them
                annotation = read_annotation(row.annotation_path, row.annotation_format,
                                             duration_s=info.duration_s)
            except (AudioError, AnnotationError, ValueError) as exc:
                _drop(dropped, row.track_id, FeatureError(f"track {row.track_id!r}: cannot compute targets: {exc}"))
                continue
            has_downbeats = truthy(getattr(row, "has_downbeats", annotation.has_downbeats))
            write_track_targets(h5, row.track_id, annotation, has_downbeats and annotation.has_downbeats,
                                total_frames, fps, widen_frames, widen_value)
        record_dropped(h5, dropped)


def _drop(dropped: dict[str, str], track_id: str, error: FeatureError) -> None:
    """Leave a track that fails out of its shard (a bad file never stops the others):
    warn, and note the reason for the store's ``dropped`` attr."""
    log.warning("dropping %s", error)
    dropped[track_id] = str(error)


