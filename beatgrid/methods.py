"""The inference methods, each defined once: name, the activations it reads, its decoder, its settings.

A method is an activation store and a decoder over that store's ``[T, 2]`` beat/downbeat
probabilities at ``fps``:

- stores (:data:`SOURCES`): ``crnn``, the CRNN's outputs; ``ltm``, the learned temporal
  model's outputs over the CRNN's;
- decoders: ``peaks``, local maxima above a threshold with a minimum distance, downbeats
  snapped to beats; ``dbn``, Viterbi decoding over (tempo, beat phase, bar position), which
  follows tempo changes; ``grid``, one constant-tempo beatgrid (BPM + downbeat offset), the DJ
  label format; ``online``, causal peak picking, as a live stream would; ``online_dbn``, causal
  forward filtering over the DBN's (tempo, beat phase, bar position) model, as a live stream would.

:data:`METHODS` is the catalogue that the workflow (variants and the store each prediction job
reads), :mod:`beatgrid.inference`, the config check, ``beatgrid predict --method`` and the
report read: adding a method is one entry here. Variant names are
``<method>@<setting>=<value>,...`` (:data:`VARIANT_SEPARATOR`).

This module imports numpy only (a decoder imports its algorithm when it runs), so the
Snakefile reads it while planning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from .decoding.grid import Beatgrid

#: Activation stores a method may read (``results/activations/<source>/``).
SOURCES = ("crnn", "ltm")
#: Separator between a base method name and its variant suffix.
VARIANT_SEPARATOR = "@"


@dataclass(frozen=True)
class Settings:
    """The decoders' settings and their defaults (what ``inference:`` and ``beatgrid predict`` set)."""

    bpm_min: float = 60.0  #: slowest tempo (BPM) of the DBN and the grid
    bpm_max: float = 200.0  #: fastest tempo (BPM); the peak pickers keep beats 60 / bpm_max s apart
    peak_threshold: float = 0.5  #: probability a ``peaks`` beat must reach
    online_threshold: float = 0.5  #: probability an ``online`` beat must reach


#: Names of every decoder setting (the keys of ``inference:`` besides ``methods``).
SETTING_NAMES = tuple(f.name for f in fields(Settings))


@dataclass
class Prediction:
    """Beats of one track: times in seconds, positions in the bar (1 = downbeat, 0 = unknown)."""

    beat_times: np.ndarray
    beat_positions: np.ndarray
    grid: Beatgrid | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def downbeat_times(self) -> np.ndarray:
        return self.beat_times[self.beat_positions == 1]


#: A decoder: ``[T, 2]`` activations at ``fps`` (frames/s), track duration (s), settings.
DecodeFunction = Callable[[np.ndarray, float, float, Settings], Prediction]


@dataclass(frozen=True)
class Decoder:
    """One way from activations to beats.

    ``settings``: every :class:`Settings` field ``decode`` reads, which a workflow variant
    sets from ``inference:`` (a setting given as a list expands into variants only for the
    methods whose decoder lists it; one it does not list would stay at its default).
    ``calibrated``: the decoder reads the activations as probabilities, so the training loss's
    positive weight is undone first (:func:`beatgrid.decoding.peaks.calibrate`).
    ``causal``: each beat is decided from the frames up to it (a live stream's decisions); the
    method is causal from audio only when the network under it is too.
    """

    name: str
    decode: DecodeFunction
    settings: tuple[str, ...]
    calibrated: bool
    causal: bool = False


def _prediction(beat_times: Any, positions: Any, grid: Beatgrid | None = None) -> Prediction:
    return Prediction(np.asarray(beat_times), np.asarray(positions, dtype=int), grid)


def _decode_peaks(activations: np.ndarray, fps: float, duration_s: float, settings: Settings) -> Prediction:
    from .decoding.peaks import pick_peaks, snap_downbeats

    beat_times = pick_peaks(activations[:, 0], fps, threshold=settings.peak_threshold, bpm_max=settings.bpm_max)
    return _prediction(beat_times, snap_downbeats(beat_times, activations[:, 1], fps))


def _decode_dbn(activations: np.ndarray, fps: float, duration_s: float, settings: Settings) -> Prediction:
    from .decoding.dbn import track_dbn

    return _prediction(*track_dbn(activations[:, 0], activations[:, 1], fps=fps,
                                  bpm_min=settings.bpm_min, bpm_max=settings.bpm_max))


def _decode_grid(activations: np.ndarray, fps: float, duration_s: float, settings: Settings) -> Prediction:
    from .decoding.grid import fit_beatgrid

    grid = fit_beatgrid(activations[:, 0], fps, downbeat_activation=activations[:, 1],
                        bpm_min=settings.bpm_min, bpm_max=settings.bpm_max)
    return _prediction(grid.beat_times(duration_s), grid.beat_positions(duration_s), grid)


def _decode_online(activations: np.ndarray, fps: float, duration_s: float, settings: Settings) -> Prediction:
    from .decoding.streaming import causal_peak_picking

    return _prediction(*causal_peak_picking(activations, fps, threshold=settings.online_threshold,
                                            bpm_max=settings.bpm_max))


def _decode_online_dbn(activations: np.ndarray, fps: float, duration_s: float, settings: Settings) -> Prediction:
    from .decoding.streaming import causal_dbn

    return _prediction(*causal_dbn(activations, fps, bpm_min=settings.bpm_min, bpm_max=settings.bpm_max))


PEAKS = Decoder("peaks", _decode_peaks, ("peak_threshold", "bpm_max"), calibrated=False)
DBN = Decoder("dbn", _decode_dbn, ("bpm_min", "bpm_max"), calibrated=True)
GRID = Decoder("grid", _decode_grid, ("bpm_min", "bpm_max"), calibrated=True)
ONLINE = Decoder("online", _decode_online, ("online_threshold", "bpm_max"), calibrated=False, causal=True)
ONLINE_DBN = Decoder("online_dbn", _decode_online_dbn, ("bpm_min", "bpm_max"), calibrated=True, causal=True)


@dataclass(frozen=True)
class Method:
    """An inference method: the activation store it reads (:data:`SOURCES`) and its decoder."""

    name: str
    source: str
    decoder: Decoder
    help: str  #: one line for ``beatgrid predict --help``

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings a workflow variant of this method sets."""
        return self.decoder.settings


#: Every inference method by name, in the order ``beatgrid predict --help`` lists them.
METHODS: dict[str, Method] = {method.name: method for method in (
    Method("crnn_dbn", "crnn", DBN, "CRNN + Viterbi decoding of tempo, beat and bar position (follows tempo "
                                    "changes; best beats on real music)"),
    Method("crnn_grid", "crnn", GRID, "CRNN + one constant-tempo beatgrid (BPM + downbeat offset), what DJ "
                                      "software uses"),
    Method("crnn_peaks", "crnn", PEAKS, "CRNN + peak picking above --threshold (no tempo model)"),
    Method("ltm_online", "ltm", ONLINE_DBN, "online: CRNN + causal LTM + forward filtering of tempo, beat and bar "
                                            "position (live only with a causal CRNN; the shipped one is not)"),
    Method("ltm_online_peaks", "ltm", ONLINE, "online: CRNN + causal LTM + causal peak picking above --threshold "
                                              "(no tempo model)"),
    Method("ltm_grid", "ltm", GRID, "CRNN + learned temporal model + constant-tempo beatgrid"),
    Method("ltm_peaks", "ltm", PEAKS, "CRNN + learned temporal model + peak picking above --threshold"),
)}


#: The method ``beatgrid predict`` and :func:`beatgrid.analyze` use unless told otherwise.
DEFAULT_METHOD = "crnn_dbn"


def base_method(method: str) -> str:
    """The base method name of a variant name (``crnn_peaks@peak_threshold=0.3`` -> ``crnn_peaks``)."""
    return str(method).split(VARIANT_SEPARATOR, 1)[0]


def get_method(method: str) -> Method:
    """The :class:`Method` of a method or variant name; ValueError naming the known ones if unknown."""
    base = base_method(method)
    if base not in METHODS:
        raise ValueError(f"unknown inference method {method!r}; known: {', '.join(METHODS)}")
    return METHODS[base]
