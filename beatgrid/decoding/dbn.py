"""Tempo-varying beat and downbeat tracking: Viterbi decoding of a bar-pointer HMM.

The model follows the efficient state space of Krebs, Böck & Widmer (ISMIR 2015) with
the joint beat/downbeat observation model of Böck, Krebs & Widmer (ISMIR 2016), as used
by madmom's ``DBNDownBeatTrackingProcessor``; it is written here with numpy + numba
(no madmom dependency).

State: ``(beat in bar b, beat interval tau in frames, position phi in 0..tau-1)``.
Every frame, ``phi`` advances by one; after the last position of a beat the pointer
moves to position 0 of the next beat in the bar (``b + 1 mod beats_per_bar``), and only
there may the tempo change, with probability ``exp(-transition_lambda * |tau'/tau - 1|)``
(normalised over ``tau'``). The first ``1 / observation_lambda`` of every beat are beat
states, those of the first beat downbeat states; the rest are non-beat states that share
the remaining probability mass equally.

Observations from ``[T]`` beat and downbeat probabilities (a downbeat is also a beat):
``p(downbeat state) = d``, ``p(beat state) = max(b, d) - d``,
``p(non-beat state) = (1 - max(b, d)) / (observation_lambda - 1)``.
Each meter in ``beats_per_bar`` is decoded as its own HMM and the most likely path wins.
Without a downbeat activation a one-beat "bar" is decoded and positions are 0 (unknown).

Offline, :func:`track_dbn` finds the most likely path (Viterbi). Causally,
:class:`ForwardFilter` runs the forward algorithm over the same model (as madmom's
``DBNBeatTrackingProcessor(online=True)``): each frame it updates and normalises
``p(state | frames 0..t)`` and reports the most probable state, with no look-ahead; the
meters are one HMM there (a uniform prior over the meters, no transitions between them),
so the filter also infers the meter. :class:`BarPointerHMM` (state space, tempo
transitions) and :func:`observation_densities` are the model both read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numba
import numpy as np

from .peaks import frame_activation

__all__ = [
    "track_dbn",
    "beat_intervals",
    "tempo_transitions",
    "DBNSettings",
    "BarPointerHMM",
    "observation_densities",
    "ForwardFilter",
    "fixed_lag_viterbi",
]

_EPS = 1e-5  # probability floor, so a frame never rules a state out completely


def beat_intervals(fps: float, bpm_min: float, bpm_max: float, num_tempi: int | None = None) -> np.ndarray:
    """Modelled beat intervals in frames: every integer in range, or ``num_tempi`` log-spaced."""
    min_interval = 60.0 * fps / bpm_max
    max_interval = 60.0 * fps / bpm_min
    intervals = np.arange(max(1, round(min_interval)), round(max_interval) + 1)
    if num_tempi is not None and num_tempi < len(intervals):
        n = num_tempi
        spaced = intervals
        while True:  # log spacing; rounding merges neighbours, so ask for more until enough
            spaced = np.unique(np.round(np.geomspace(min_interval, max_interval, n)))
            if len(spaced) >= num_tempi:
                break
            n += 1
        intervals = spaced
    return np.ascontiguousarray(intervals, dtype=np.int64)


def tempo_transitions(intervals: np.ndarray, transition_lambda: float) -> np.ndarray:
    """[from, to] log-probabilities of the beat interval at a beat boundary.

    ``exp(-lambda * |to / from - 1|)`` normalised over ``to``; transitions below machine
    epsilon are impossible (``-inf``).
    """
    ratio = intervals[None, :] / intervals[:, None].astype(float)
    prob = np.exp(-transition_lambda * np.abs(ratio - 1.0))
    prob[prob <= np.spacing(1)] = 0.0
    prob /= prob.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(prob)


@dataclass(frozen=True)
class DBNSettings:
    """The bar-pointer model's settings, one home for what the offline decoder
    (:func:`track_dbn`) and the causal one (:class:`ForwardFilter`) share.

    ``bpm_min``, ``bpm_max``: tempo range in BPM (beat intervals rounded to whole frames);
    ``beats_per_bar``: meters to model; ``transition_lambda``: tempo-change penalty (higher
    keeps the tempo steadier); ``observation_lambda``: a beat's first
    ``1 / observation_lambda`` are beat states; ``num_tempi``: limit the number of modelled
    intervals (log-spaced), None = all.
    """

    bpm_min: float = 60.0
    bpm_max: float = 200.0
    beats_per_bar: Sequence[int] | int = (3, 4)
    transition_lambda: float = 100.0
    observation_lambda: float = 16.0
    num_tempi: int | None = None

    def meters(self, fps: float) -> tuple[int, ...]:
        """The meters to model at ``fps`` frames/s; ValueError naming the bad setting."""
        if not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"fps must be a positive number, got {fps}")
        if not (0 < self.bpm_min < self.bpm_max):
            raise ValueError(f"need 0 < bpm_min < bpm_max, got bpm_min={self.bpm_min}, bpm_max={self.bpm_max}")
        if self.observation_lambda <= 1:
            raise ValueError(f"observation_lambda must be > 1, got {self.observation_lambda}")
        bars = self.beats_per_bar
        meters = (bars,) if isinstance(bars, (int, np.integer)) else tuple(bars)
        if not meters or min(int(m) for m in meters) < 1:
            raise ValueError(f"beats_per_bar must hold positive ints, got {bars}")
        return tuple(int(m) for m in meters)


@dataclass(frozen=True)
class BarPointerHMM:
    """The bar-pointer state space and tempo transitions, shared by Viterbi and forward filtering.

    ``intervals``: modelled beat intervals in frames (:func:`beat_intervals`);
    ``log_trans``: ``[from, to]`` log-probabilities of the interval at a beat boundary
    (:func:`tempo_transitions`); ``pred_lo``/``pred_hi``: for each interval, the band of
    intervals it can be reached from; ``border``: beat states per beat
    (``ceil(interval / observation_lambda)`` frames, the rest are non-beat states).
    """

    intervals: np.ndarray
    log_trans: np.ndarray
    pred_lo: np.ndarray
    pred_hi: np.ndarray
    border: np.ndarray

    @classmethod
    def build(cls, fps: float, settings: DBNSettings) -> "BarPointerHMM":
        """The model at ``fps`` frames/s for the tempo range of ``settings``."""
        intervals = beat_intervals(fps, settings.bpm_min, settings.bpm_max, settings.num_tempi)
        if len(intervals) > np.iinfo(np.int16).max:
            raise ValueError(f"too many beat intervals ({len(intervals)}); lower fps or set num_tempi")
        log_trans = tempo_transitions(intervals, settings.transition_lambda)
        finite = np.isfinite(log_trans)
        pred_lo = np.argmax(finite, axis=0).astype(np.int64)  # contiguous band around the diagonal
        pred_hi = (len(intervals) - 1 - np.argmax(finite[::-1], axis=0)).astype(np.int64)
        border = np.ceil(intervals / settings.observation_lambda).astype(np.int64)
        return cls(intervals, log_trans, pred_lo, pred_hi, border)


def observation_densities(beat: np.ndarray, downbeat: np.ndarray | None, observation_lambda: float) -> np.ndarray:
    """``[T, 3]`` observation densities of (non-beat, beat, downbeat) states per frame.

    ``beat``, ``downbeat``: ``[T]`` probabilities in [0, 1]; without a downbeat activation
    beat and downbeat states both read the beat probability. Densities are floored at
    ``1e-5`` so a frame never rules a state out. Arithmetic only (no transcendental
    functions), so a frame's densities do not depend on the array it is computed in.
    """
    densities = np.empty((len(beat), 3))
    if downbeat is not None:
        any_beat = np.maximum(beat, downbeat)
        densities[:, 1] = np.maximum(any_beat - downbeat, _EPS)
        densities[:, 2] = np.maximum(downbeat, _EPS)
    else:
        any_beat = beat
        densities[:, 1] = densities[:, 2] = np.maximum(beat, _EPS)
    densities[:, 0] = np.maximum(1.0 - any_beat, _EPS) / (observation_lambda - 1.0)
    return densities


@numba.njit(cache=True, nogil=True)
def _viterbi(log_obs, intervals, log_trans, pred_lo, pred_hi, border, n_beats):  # pragma: no cover - numba
    """Most likely path through the bar-pointer HMM, decoded beat by beat.

    Inside a beat the path is deterministic (``phi`` advances by one per frame), so the
    log-probability of being at the last position of a beat that began at frame ``s``
    is the entry score at ``s`` plus sums of observation log densities, read from
    prefix sums in O(1). The recursion therefore only runs over beat entries
    (frame x beat-in-bar x tempo) instead of shifting every state each frame; the
    result is exactly the frame-level Viterbi path.

    log_obs: [T, 3] log densities of (non-beat, beat, downbeat) states.
    Returns (beat frames, beat-in-bar index, tempo index, path log-probability).
    """
    n_frames = log_obs.shape[0]
    n_tempi = intervals.shape[0]
    tau_max = 0
    beat_states = 0
    for i in range(n_tempi):
        tau_max = max(tau_max, intervals[i])
        beat_states += intervals[i]
    init = -math.log(n_beats * beat_states)
    cum = np.zeros((3, n_frames + 1))
    for k in range(3):
        for u in range(n_frames):
            cum[k, u + 1] = cum[k, u] + log_obs[u, k]
    ring = tau_max + 1  # entry scores are needed at most tau_max frames back
    entry = np.empty((ring, n_beats, n_tempi))
    back = np.zeros((n_frames, n_beats, n_tempi), dtype=np.int16)
    last = np.empty((n_beats, n_tempi))
    for b in range(n_beats):
        k = 2 if b == 0 else 1
        for ti in range(n_tempi):
            entry[0, b, ti] = init + log_obs[0, k]
    for t in range(1, n_frames):
        # score of each (beat, tempo) at its last position at frame t - 1
        for b in range(n_beats):
            k = 2 if b == 0 else 1
            for tj in range(n_tempi):
                start = t - intervals[tj]
                if start >= 0:
                    edge = start + border[tj]
                    last[b, tj] = (
                        entry[start % ring, b, tj] + cum[k, edge] - cum[k, start + 1] + cum[0, t] - cum[0, edge]
                    )
                else:  # the path began inside this beat, at position intervals - t
                    n_beat_frames = min(max(border[tj] - (intervals[tj] - t), 0), t)
                    last[b, tj] = init + cum[k, n_beat_frames] + cum[0, t] - cum[0, n_beat_frames]
        slot = t % ring
        for b in range(n_beats):
            k = 2 if b == 0 else 1
            b_prev = (b + n_beats - 1) % n_beats
            for ti in range(n_tempi):
                best = -np.inf
                arg = pred_lo[ti]
                for tj in range(pred_lo[ti], pred_hi[ti] + 1):
                    value = last[b_prev, tj] + log_trans[tj, ti]
                    if value > best:
                        best = value
                        arg = tj
                back[t, b, ti] = arg
                entry[slot, b, ti] = best + log_obs[t, k]
    # best final state over every (beat, tempo, position) at the last frame
    t_end = n_frames
    best = -np.inf
    best_b, best_ti, best_start = 0, 0, -1
    for b in range(n_beats):
        k = 2 if b == 0 else 1
        for ti in range(n_tempi):
            for phi in range(intervals[ti]):
                start = t_end - 1 - phi
                if start >= 0:
                    edge = min(start + border[ti], t_end)
                    value = entry[start % ring, b, ti] + cum[k, edge] - cum[k, start + 1] + cum[0, t_end] - cum[0, edge]
                else:
                    n_beat_frames = min(max(border[ti] - (phi - (t_end - 1)), 0), t_end)
                    value = init + cum[k, n_beat_frames] + cum[0, t_end] - cum[0, n_beat_frames]
                if value > best:
                    best = value
                    best_b, best_ti, best_start = b, ti, start
    # follow the beat entries back
    frames = np.empty(n_frames, dtype=np.int64)
    beat_index = np.empty(n_frames, dtype=np.int64)
    tempo_index = np.empty(n_frames, dtype=np.int64)
    n = 0
    start, b, ti = best_start, best_b, best_ti
    while start >= 0:
        frames[n] = start
        beat_index[n] = b
        tempo_index[n] = ti
        n += 1
        if start == 0:
            break
        tj = back[start, b, ti]
        start -= intervals[tj]
        b = (b + n_beats - 1) % n_beats
        ti = tj
    return frames[:n][::-1].copy(), beat_index[:n][::-1].copy(), tempo_index[:n][::-1].copy(), best


@numba.njit(cache=True, nogil=True)
def _forward_step(alpha, last, densities, intervals, trans, pred_lo, pred_hi, border, prev_row, row_kind):  # pragma: no cover - numba
    """One frame of the forward algorithm over the bar-pointer HMM, in place.

    alpha: ``[rows, tempi, max interval]`` filtered probabilities of (row = meter and beat
    in bar, interval, position); positions past a row's interval stay 0. ``last``: scratch
    ``[rows, tempi]``. densities: ``[3]`` (non-beat, beat, downbeat) of the new frame.
    Predicts (position + 1, or a beat boundary with a tempo transition into position 0 of
    the next beat in the bar), weights by the densities and normalises to sum 1.
    Returns the probability of the beat states (a beat is under way) and the row holding
    most of it.
    """
    n_rows, n_tempi = last.shape
    for r in range(n_rows):
        for tj in range(n_tempi):
            last[r, tj] = alpha[r, tj, intervals[tj] - 1]
    for r in range(n_rows):
        p = prev_row[r]
        for ti in range(n_tempi):
            for phi in range(intervals[ti] - 1, 0, -1):
                alpha[r, ti, phi] = alpha[r, ti, phi - 1]
            entry = 0.0
            for tj in range(pred_lo[ti], pred_hi[ti] + 1):
                entry += last[p, tj] * trans[tj, ti]
            alpha[r, ti, 0] = entry
    total = 0.0
    beat_mass = 0.0
    best_row_mass = -1.0
    best_row = 0
    for r in range(n_rows):
        beat_density = densities[row_kind[r]]
        row_mass = 0.0
        for ti in range(n_tempi):
            for phi in range(border[ti]):
                value = alpha[r, ti, phi] * beat_density
                alpha[r, ti, phi] = value
                row_mass += value
            for phi in range(border[ti], intervals[ti]):
                value = alpha[r, ti, phi] * densities[0]
                alpha[r, ti, phi] = value
                total += value
        total += row_mass
        beat_mass += row_mass
        if row_mass > best_row_mass:
            best_row_mass = row_mass
            best_row = r
    scale = 1.0 / total
    for r in range(n_rows):
        for ti in range(n_tempi):
            for phi in range(intervals[ti]):
                alpha[r, ti, phi] *= scale
    return beat_mass * scale, best_row


@numba.njit(cache=True, nogil=True)
def _forward_pass(alpha, last, densities, intervals, trans, pred_lo, pred_hi, border, prev_row, row_kind):  # pragma: no cover - numba
    """:func:`_forward_step` over ``[T, 3]`` densities: ``[T]`` beat probabilities, ``[T]`` rows."""
    beat_probability = np.empty(densities.shape[0])
    rows = np.empty(densities.shape[0], dtype=np.int64)
    for t in range(densities.shape[0]):
        beat_probability[t], rows[t] = _forward_step(alpha, last, densities[t], intervals, trans, pred_lo,
                                                     pred_hi, border, prev_row, row_kind)
    return beat_probability, rows


class ForwardFilter:
    """Causal inference over the bar-pointer HMM: the forward algorithm, one frame per :meth:`step`.

    After frame ``t`` it holds ``alpha = p(state | frames 0..t)`` and reports the
    probability that a beat is under way (the mass of the beat states, the first
    ``ceil(interval / observation_lambda)`` frames of every beat) and the beat in the bar
    most of that mass sits on; nothing depends on later frames. The meters in
    ``beats_per_bar`` form one HMM (each meter gets prior mass ``1 / len(beats_per_bar)``,
    uniform over its states), so the filter also weighs the meters. Without downbeats
    (``downbeats=False``) a one-beat bar is modelled and the downbeat probability is ignored.

    Args:
        fps: frames per second of the activations.
        settings: the model (tempo range, meters, lambdas).
        downbeats: whether a downbeat probability is observed.
    """

    def __init__(self, fps: float = 50.0, settings: DBNSettings = DBNSettings(), downbeats: bool = True) -> None:
        meters = (replace(settings, beats_per_bar=1) if not downbeats else settings).meters(fps)
        self.fps = float(fps)
        self.observation_lambda = float(settings.observation_lambda)
        self.downbeats = downbeats
        self.hmm = BarPointerHMM.build(fps, settings)
        self._trans = np.exp(self.hmm.log_trans)
        #: beats per bar and beat in the bar (0 = downbeat) of each row of ``alpha``
        self.row_meter = np.concatenate([np.full(m, m) for m in meters]).astype(np.int64)
        self.row_beat = np.concatenate([np.arange(m) for m in meters]).astype(np.int64)
        starts = np.repeat(np.cumsum((0,) + meters[:-1]), meters)
        self._prev_row = (starts + (self.row_beat - 1) % self.row_meter).astype(np.int64)
        self._row_kind = np.where(self.row_beat == 0, 2, 1).astype(np.int64)
        intervals = self.hmm.intervals
        valid = np.arange(intervals.max())[None, None, :] < intervals[None, :, None]
        prior = 1.0 / (self.row_meter * intervals.sum() * len(meters))
        self._prior = np.where(valid, prior[:, None, None], 0.0)
        self._last = np.empty((len(self.row_meter), len(intervals)))
        self.reset()

    def reset(self) -> None:
        """Forget the stream: back to the prior (uniform over each meter's states)."""
        self.alpha = self._prior.copy()

    def _densities(self, beat: np.ndarray, downbeat: np.ndarray | None) -> np.ndarray:
        """Observation densities of ``[T]`` probabilities; a ValueError for NaN, which would
        poison the filter for the rest of the stream."""
        beat = _validate(beat, "beat probability")
        if not self.downbeats:
            return observation_densities(beat, None, self.observation_lambda)
        if downbeat is None:
            raise ValueError("this filter models downbeats: give a downbeat probability")
        return observation_densities(beat, _validate(downbeat, "downbeat probability"), self.observation_lambda)

    def _model(self) -> tuple:
        hmm = self.hmm
        return (hmm.intervals, self._trans, hmm.pred_lo, hmm.pred_hi, hmm.border, self._prev_row, self._row_kind)

    def step(self, beat: float, downbeat: float | None = None) -> tuple[float, int]:
        """Filter the next frame's probabilities: ``(p(beat under way | frames 0..t), row)``.

        ``row`` indexes :attr:`row_meter`/:attr:`row_beat`: the beat in the bar (and
        meter) holding most of the beat-state probability.
        """
        densities = self._densities(np.array([beat]), None if downbeat is None else np.array([downbeat]))
        return _forward_step(self.alpha, self._last, densities[0], *self._model())

    def process(self, beat: np.ndarray, downbeat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` over ``[T]`` probabilities (continuing the stream) in one compiled loop.

        Returns ``[T]`` beat-state probabilities and ``[T]`` rows, exactly as :meth:`step`
        gives them frame by frame.
        """
        return _forward_pass(self.alpha, self._last, self._densities(beat, downbeat), *self._model())


def _validate(activation, name: str) -> np.ndarray:
    return np.clip(frame_activation(activation, name), 0.0, 1.0)


def _loud_activations(beat_activation, downbeat_activation, threshold: float
                      ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The validated ``[T]`` beat and (or None) downbeat probabilities, and the frames where
    either reaches ``threshold`` (the decoders start at the first, no beats in a silent intro)."""
    beat = _validate(beat_activation, "beat_activation")
    down = None if downbeat_activation is None else _validate(downbeat_activation, "downbeat_activation")
    if down is not None and down.shape != beat.shape:
        raise ValueError(f"downbeat_activation has {down.shape[0]} frames but beat_activation has {beat.shape[0]}")
    loud = np.flatnonzero((beat if down is None else np.maximum(beat, down)) >= threshold)
    return beat, down, loud


def track_dbn(
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray | None = None,
    fps: float = 50.0,
    bpm_min: float = DBNSettings.bpm_min,
    bpm_max: float = DBNSettings.bpm_max,
    beats_per_bar: Sequence[int] | int = DBNSettings.beats_per_bar,
    transition_lambda: float = DBNSettings.transition_lambda,
    observation_lambda: float = DBNSettings.observation_lambda,
    num_tempi: int | None = DBNSettings.num_tempi,
    correct: bool = True,
    threshold: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Beats and their bar positions by Viterbi decoding of a bar-pointer HMM.

    Args:
        beat_activation: [T] beat probability per frame (frame ``i`` at ``i / fps`` s).
        downbeat_activation: optional [T] downbeat probability.
        fps: frames per second.
        bpm_min, bpm_max, beats_per_bar, transition_lambda, observation_lambda, num_tempi:
            the model, as :class:`DBNSettings` (defaults included); of the meters in
            ``beats_per_bar`` the most likely one is returned (ignored without a
            downbeat activation).
        correct: place each beat on the activation maximum within its beat states
            (as madmom does) instead of on the first beat state.
        threshold: decode only from the first to the last frame where the beat or
            downbeat probability reaches this value (silent intros and outros give no
            beats; an activation that never reaches it gives none at all).

    Returns:
        ``(beat_times, positions)``: beat times in seconds and positions in the bar
        (1 = downbeat); positions are 0 when no downbeat activation is given.
    """
    settings = DBNSettings(bpm_min, bpm_max, beats_per_bar, transition_lambda, observation_lambda, num_tempi)
    meters = settings.meters(fps)
    beat, down, loud = _loud_activations(beat_activation, downbeat_activation, threshold)
    has_downbeats = down is not None
    if len(loud) == 0:
        return np.empty(0), np.empty(0, dtype=int)
    first_frame, end_frame = int(loud[0]), int(loud[-1]) + 1
    beat = beat[first_frame:end_frame]
    if has_downbeats:
        down = down[first_frame:end_frame]

    hmm = BarPointerHMM.build(fps, settings)
    log_obs = np.log(observation_densities(beat, down, observation_lambda))
    if not has_downbeats:
        meters = (1,)

    best = None
    for meter in meters:  # madmom decodes one HMM per meter and keeps the most likely
        path = _viterbi(log_obs, hmm.intervals, hmm.log_trans, hmm.pred_lo, hmm.pred_hi, hmm.border, meter)
        if best is None or path[3] > best[3]:
            best = path
    frames, beat_index, tempo_index, _ = best

    if correct and len(frames):
        width = hmm.border[tempo_index]
        offsets = np.arange(int(width.max()))
        window = np.minimum(frames[:, None] + offsets[None, :], len(beat) - 1)
        scores = np.where(offsets[None, :] < width[:, None], beat[window], -np.inf)
        frames = window[np.arange(len(frames)), np.argmax(scores, axis=1)]
    positions = beat_index + 1 if has_downbeats else np.zeros(len(frames), dtype=int)
    return (frames + first_frame) / float(fps), positions.astype(int)


def fixed_lag_viterbi(
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray | None = None,
    fps: float = 50.0,
    lag_frames: int = 0,
    settings: DBNSettings = DBNSettings(),
    threshold: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Beats decided ``lag_frames`` frames late: online Viterbi decoding with a fixed lag.

    Frame ``s`` is decided at frame ``s + lag_frames``, from the most likely path through
    the bar-pointer HMM (the meters of ``settings`` in one model, as :class:`ForwardFilter`)
    that ends there; a beat is placed where that path enters one (no ``correct`` shift),
    if that is frame ``s`` or, unseen by the previous decision, ``s - 1``, so no beat is
    reported more than ``lag_frames + 1`` frames after it; beats keep at least the
    shortest modelled beat interval apart. It reads
    nothing later than ``s + lag_frames``; with ``lag_frames`` at least the track's length
    it decodes the offline Viterbi path. This is the measure of what latency buys an online
    tracker (``benchmarks/bench_online_gap.py``); ``ltm_online`` itself decides with one
    frame of delay by forward filtering.

    Args:
        beat_activation, downbeat_activation: ``[T]`` probabilities per frame (frame ``i`` at ``i / fps`` s).
        fps: frames per second.
        lag_frames: decision delay in frames (>= 0).
        settings: the model (tempo range, meters, lambdas).
        threshold: decoding starts at the first frame whose beat or downbeat probability
            reaches it (as :func:`track_dbn` and :class:`beatgrid.decoding.streaming.CausalDBN`).

    Returns:
        ``(beat_times, positions)`` in seconds and beats in the bar (1 = downbeat; 0 without
        a downbeat activation).
    """
    if lag_frames < 0:
        raise ValueError(f"lag_frames must be >= 0, got {lag_frames}")
    beat, down, loud = _loud_activations(beat_activation, downbeat_activation, threshold)
    has_downbeats = down is not None
    if len(loud) == 0:
        return np.empty(0), np.empty(0, dtype=int)
    first_frame = int(loud[0])
    beat = beat[first_frame:]
    down = down[first_frame:] if has_downbeats else None

    model = ForwardFilter(fps, settings, downbeats=has_downbeats)
    hmm, prev_row, row_kind = model.hmm, model._prev_row, model._row_kind
    intervals = hmm.intervals
    n_rows, n_tempi, n_frames = len(prev_row), len(intervals), len(beat)
    positions_in_beat = np.arange(intervals.max())[None, :]
    valid = np.broadcast_to(positions_in_beat < intervals[:, None], (n_rows, n_tempi, intervals.max()))
    in_beat = positions_in_beat < hmm.border[:, None]
    log_obs = np.log(observation_densities(beat, down, model.observation_lambda))
    with np.errstate(divide="ignore"):
        delta = np.log(model._prior)
    entries = np.zeros((n_frames, n_rows, n_tempi), dtype=np.int16)  # best previous interval at a beat entry
    tempo_rows = np.arange(n_tempi)
    decided: list[tuple[int, int, int]] = []  # (frame, row, position in beat) of each decided frame

    def trace(frame: int, state: tuple[int, int, int], until: int) -> list[tuple[int, int, int]]:
        """The path's (frame, row, phi) from ``frame`` back to ``until``, latest first."""
        row, tempo, phi = state
        path = []
        while frame >= until:
            path.append((frame, row, phi))
            if phi > 0:
                frame, phi = frame - 1, phi - 1
            else:
                previous_tempo = int(entries[frame, row, tempo])
                frame, row, tempo, phi = frame - 1, prev_row[row], previous_tempo, intervals[previous_tempo] - 1
        return path

    for t in range(n_frames):
        if t:
            last = delta[:, tempo_rows, intervals - 1]  # [rows, tempi]: the last position of each beat
            shifted = np.full_like(delta, -np.inf)
            shifted[:, :, 1:] = delta[:, :, :-1]
            candidates = last[prev_row][:, :, None] + hmm.log_trans[None, :, :]  # [rows, from, to]
            best_from = np.argmax(candidates, axis=1)
            shifted[:, :, 0] = np.take_along_axis(candidates, best_from[:, None, :], axis=1)[:, 0, :]
            entries[t] = best_from
            delta = np.where(valid, shifted, -np.inf)
        delta = delta + np.where(in_beat[None], log_obs[t, row_kind][:, None, None], log_obs[t, 0])
        delta -= delta.max()
        if t < lag_frames and t < n_frames - 1:
            continue
        state = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if t < n_frames - 1:
            decided.append(trace(t, state, t - lag_frames)[-1])
        else:  # the stream ends: the last path decides every frame still open
            open_from = decided[-1][0] + 1 if decided else 0
            decided.extend(reversed(trace(t, state, open_from)))

    beat_frames, beat_rows = [], []
    previous_phi = None
    for frame, row, phi in decided:
        # a beat began at this frame, or (paths of successive decisions may disagree) at the
        # frame before, unseen by the previous decision: at most ``lag_frames + 1`` frames late
        if phi == 0 or (phi == 1 and previous_phi is not None and previous_phi >= 1):
            entry = frame - phi
            if not beat_frames or entry - beat_frames[-1] >= intervals[0]:
                beat_frames.append(entry)
                beat_rows.append(row)
        previous_phi = phi
    positions = model.row_beat[beat_rows] + 1 if has_downbeats else np.zeros(len(beat_frames), dtype=np.int64)
    return (np.asarray(beat_frames, dtype=np.int64) + first_frame) / float(fps), np.asarray(positions, dtype=int)
