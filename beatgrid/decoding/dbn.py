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
"""

from __future__ import annotations

import math
from typing import Sequence

import numba
import numpy as np

from .peaks import frame_activation

__all__ = ["track_dbn", "beat_intervals", "tempo_transitions"]

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


def _validate(activation, name: str) -> np.ndarray:
    return np.clip(frame_activation(activation, name), 0.0, 1.0)


def track_dbn(
    beat_activation: np.ndarray,
    downbeat_activation: np.ndarray | None = None,
    fps: float = 50.0,
    bpm_min: float = 60.0,
    bpm_max: float = 200.0,
    beats_per_bar: Sequence[int] | int = (3, 4),
    transition_lambda: float = 100.0,
    observation_lambda: float = 16.0,
    num_tempi: int | None = None,
    correct: bool = True,
    threshold: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Beats and their bar positions by Viterbi decoding of a bar-pointer HMM.

    Args:
        beat_activation: [T] beat probability per frame (frame ``i`` at ``i / fps`` s).
        downbeat_activation: optional [T] downbeat probability.
        fps: frames per second.
        bpm_min, bpm_max: tempo range in BPM (beat intervals rounded to whole frames).
        beats_per_bar: meters to decode; the most likely one is returned (ignored
            without a downbeat activation).
        transition_lambda: tempo-change penalty; higher keeps the tempo steadier.
        observation_lambda: a beat's first ``1 / observation_lambda`` are beat states.
        num_tempi: limit the number of modelled intervals (log-spaced); None = all.
        correct: place each beat on the activation maximum within its beat states
            (as madmom does) instead of on the first beat state.
        threshold: decode only from the first to the last frame where the beat or
            downbeat probability reaches this value (silent intros and outros give no
            beats; an activation that never reaches it gives none at all).

    Returns:
        ``(beat_times, positions)``: beat times in seconds and positions in the bar
        (1 = downbeat); positions are 0 when no downbeat activation is given.
    """
    beat = _validate(beat_activation, "beat_activation")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if not (0 < bpm_min < bpm_max):
        raise ValueError(f"need 0 < bpm_min < bpm_max, got bpm_min={bpm_min}, bpm_max={bpm_max}")
    if observation_lambda <= 1:
        raise ValueError(f"observation_lambda must be > 1, got {observation_lambda}")
    meters = (beats_per_bar,) if isinstance(beats_per_bar, (int, np.integer)) else tuple(beats_per_bar)
    if not meters or min(int(m) for m in meters) < 1:
        raise ValueError(f"beats_per_bar must hold positive ints, got {beats_per_bar}")
    has_downbeats = downbeat_activation is not None
    if has_downbeats:
        down = _validate(downbeat_activation, "downbeat_activation")
        if down.shape != beat.shape:
            raise ValueError(f"downbeat_activation has {down.shape[0]} frames but beat_activation has {beat.shape[0]}")
    loud = np.flatnonzero(np.maximum(beat, down) >= threshold if has_downbeats else beat >= threshold)
    if len(loud) == 0:
        return np.empty(0), np.empty(0, dtype=int)
    first_frame, end_frame = int(loud[0]), int(loud[-1]) + 1
    beat = beat[first_frame:end_frame]
    if has_downbeats:
        down = down[first_frame:end_frame]

    intervals = beat_intervals(fps, bpm_min, bpm_max, num_tempi)
    if len(intervals) > np.iinfo(np.int16).max:
        raise ValueError(f"too many beat intervals ({len(intervals)}); lower fps or set num_tempi")
    log_trans = tempo_transitions(intervals, transition_lambda)
    finite = np.isfinite(log_trans)
    pred_lo = np.argmax(finite, axis=0).astype(np.int64)  # contiguous band around the diagonal
    pred_hi = (len(intervals) - 1 - np.argmax(finite[::-1], axis=0)).astype(np.int64)
    border = np.ceil(intervals / observation_lambda).astype(np.int64)

    log_obs = np.empty((len(beat), 3))
    if has_downbeats:
        any_beat = np.maximum(beat, down)
        log_obs[:, 1] = np.log(np.maximum(any_beat - down, _EPS))
        log_obs[:, 2] = np.log(np.maximum(down, _EPS))
    else:
        any_beat = beat
        log_obs[:, 1] = log_obs[:, 2] = np.log(np.maximum(beat, _EPS))
        meters = (1,)
    log_obs[:, 0] = np.log(np.maximum(1.0 - any_beat, _EPS) / (observation_lambda - 1.0))

    best = None
    for meter in meters:  # madmom decodes one HMM per meter and keeps the most likely
        path = _viterbi(log_obs, intervals, log_trans, pred_lo, pred_hi, border, int(meter))
        if best is None or path[3] > best[3]:
            best = path
    frames, beat_index, tempo_index, _ = best

    if correct and len(frames):
        width = border[tempo_index]
        offsets = np.arange(int(width.max()))
        window = np.minimum(frames[:, None] + offsets[None, :], len(beat) - 1)
        scores = np.where(offsets[None, :] < width[:, None], beat[window], -np.inf)
        frames = window[np.arange(len(frames)), np.argmax(scores, axis=1)]
    positions = beat_index + 1 if has_downbeats else np.zeros(len(frames), dtype=int)
    return (frames + first_frame) / float(fps), positions.astype(int)
