"""Minimal post-processing of beat/downbeat activations: calibration, peak picking and bar
positions.

This is the field's minimal baseline (as in Beat This!): beats are local maxima of the
beat activation above a threshold, at least a minimum interval apart; downbeats are
peaks of the downbeat activation, each snapped to its nearest beat. Frame ``i`` of an
activation is at ``i / fps`` seconds.

:func:`calibrate` turns the outputs of a network trained with positive-weighted BCE back
into probabilities, for the decoders that read them as such (beatgrid, DBN).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.signal import find_peaks

__all__ = ["activation_pair", "calibrate", "frame_activation", "pick_peaks", "snap_downbeats", "DEFAULT_MIN_INTERVAL_S"]

DEFAULT_MIN_INTERVAL_S = 0.07
"""Default minimum distance between two picked peaks (s): the ±70 ms beat evaluation
window, within which two detections cannot both be right."""


def frame_activation(activation: np.ndarray, name: str) -> np.ndarray:
    """``activation`` as a float64 ``[T]`` array of frame values; a ValueError naming
    ``name`` if it is not 1-D or holds NaN/inf."""
    act = np.asarray(activation, dtype=np.float64)
    if act.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of frame values, got shape {act.shape}")
    if not np.all(np.isfinite(act)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return act


def activation_pair(activations: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """``activations`` as a ``[T, 2]`` (beat, downbeat) array of ``dtype``; a ValueError
    for any other shape."""
    activations = np.asarray(activations, dtype=dtype)
    if activations.ndim != 2 or activations.shape[1] != 2:
        raise ValueError(f"activations must have shape [T, 2], got {activations.shape}")
    return activations


def calibrate(activations: np.ndarray, pos_weight: float | Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Probabilities from the outputs of a network trained with ``pos_weight`` on positives.

    BCE with positive weight ``w`` is minimised by ``q = w p / (w p + 1 - p)`` for a frame
    that is a beat with probability ``p``: the network overstates every uncertain frame
    (with ``w = 13``, a frame that is a beat one time in two reads 0.93). Subtracting
    ``log w`` from the logit undoes it: ``p = q / (q + w (1 - q))``.

    Args:
        activations: ``[T]`` or ``[T, C]`` network outputs in [0, 1].
        pos_weight: the training loss's positive weight, a scalar or one per column;
            ``None`` (or 1) leaves the activations as they are.

    Returns:
        float32 array of the same shape.
    """
    q = np.asarray(activations, dtype=np.float64)
    if pos_weight is None:
        return q.astype(np.float32)
    weight = np.asarray(pos_weight, dtype=np.float64).reshape(-1)
    if weight.size not in (1, q.shape[-1] if q.ndim == 2 else 1):
        raise ValueError(f"pos_weight has {weight.size} values for activations of shape {q.shape}")
    if np.any(~np.isfinite(weight)) or np.any(weight <= 0):
        raise ValueError(f"pos_weight must be positive numbers, got {weight.tolist()}")
    if weight.size == 1:
        weight = weight[0]
    q = np.clip(q, 0.0, 1.0)
    denominator = q + weight * (1.0 - q)
    return np.divide(q, denominator, out=np.zeros_like(q), where=denominator > 0).astype(np.float32)


def pick_peaks(
    activation: np.ndarray,
    fps: float,
    threshold: float = 0.5,
    min_interval_s: float | None = None,
    bpm_max: float | None = None,
    interpolate: bool = False,
) -> np.ndarray:
    """Times (s) of the local maxima of ``activation`` that reach ``threshold``.

    Args:
        activation: [T] probabilities per frame at ``fps``.
        fps: frames per second.
        threshold: minimum peak value (inclusive).
        min_interval_s: minimum distance between peaks in seconds; of two closer peaks
            the higher one is kept (:func:`scipy.signal.find_peaks` ``distance``). If
            None: ``60 / bpm_max`` when ``bpm_max`` is given, else
            :data:`DEFAULT_MIN_INTERVAL_S`.
        bpm_max: fastest tempo expected (BPM), used only when ``min_interval_s`` is None.
        interpolate: refine each peak to sub-frame time by a parabola through the peak
            frame and its neighbours. Off by default, so times are frame times
            ``i / fps`` as in madmom / Beat This! and evaluation is comparable to
            published numbers; :func:`beatgrid.decoding.grid.fit_beatgrid` interpolates itself.

    Returns:
        Sorted peak times in seconds (float64).
    """
    act = frame_activation(activation, "activation")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if min_interval_s is None:
        if bpm_max is not None:
            if bpm_max <= 0:
                raise ValueError(f"bpm_max must be positive, got {bpm_max}")
            min_interval_s = 60.0 / bpm_max
        else:
            min_interval_s = DEFAULT_MIN_INTERVAL_S
    if min_interval_s < 0:
        raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
    # find_peaks keeps peaks at least `distance` frames apart
    distance = max(1, int(math.ceil(min_interval_s * fps - 1e-9)))
    # pad with -inf: find_peaks never reports the first or last frame, but a track may
    # start or end on a beat
    padded = np.concatenate([[-np.inf], act, [-np.inf]])
    peaks, _ = find_peaks(padded, height=threshold, distance=distance)
    peaks = peaks - 1
    if not interpolate or len(peaks) == 0:
        return peaks / float(fps)
    left = act[np.maximum(peaks - 1, 0)]
    centre = act[peaks]
    right = act[np.minimum(peaks + 1, len(act) - 1)]
    curvature = left - 2.0 * centre + right
    inside = (peaks > 0) & (peaks < len(act) - 1)  # the edge frames have one neighbour only
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(inside & (curvature < 0), 0.5 * (left - right) / curvature, 0.0)
    return (peaks + np.clip(delta, -0.5, 0.5)) / float(fps)


def snap_downbeats(
    beat_times: np.ndarray,
    downbeat_activation: np.ndarray,
    fps: float,
    threshold: float = 0.5,
    beats_per_bar: int | None = None,
    min_interval_s: float | None = None,
) -> np.ndarray:
    """Bar position of every beat (1 = downbeat), from downbeat peaks snapped to beats.

    Downbeats are :func:`pick_peaks` of ``downbeat_activation`` (same ``threshold``);
    each is moved to its nearest beat (several on one beat count once). Positions then
    count up from each downbeat, wrapping after ``beats_per_bar`` beats, so a missed
    downbeat does not break the bar count and an early one restarts it. Beats before
    the first downbeat are counted backwards from it. ``beats_per_bar`` defaults to the
    most common number of beats between consecutive downbeats (ties: the smaller), or
    4 when fewer than two downbeats are found.

    Returns:
        [len(beat_times)] int positions; all 0 (unknown) when no downbeat is found.
    """
    beats = np.asarray(beat_times, dtype=np.float64)
    if beats.ndim != 1:
        raise ValueError(f"beat_times must be a 1-D array of seconds, got shape {beats.shape}")
    if len(beats) > 1 and np.any(np.diff(beats) < 0):
        raise ValueError("beat_times must be sorted")
    if beats_per_bar is not None and beats_per_bar < 1:
        raise ValueError(f"beats_per_bar must be >= 1, got {beats_per_bar}")
    positions = np.zeros(len(beats), dtype=int)
    downbeats = pick_peaks(downbeat_activation, fps, threshold=threshold, min_interval_s=min_interval_s)
    if len(beats) == 0 or len(downbeats) == 0:
        return positions
    # nearest beat of each downbeat
    right = np.clip(np.searchsorted(beats, downbeats), 1, max(len(beats) - 1, 1))
    left = right - 1
    nearest = np.where(np.abs(beats[left] - downbeats) <= np.abs(beats[right] - downbeats), left, right)
    down_idx = np.unique(np.clip(nearest, 0, len(beats) - 1))
    if beats_per_bar is None:
        bar_lengths = np.diff(down_idx)
        beats_per_bar = int(np.argmax(np.bincount(bar_lengths))) if len(bar_lengths) else 4
        beats_per_bar = max(beats_per_bar, 1)
    index = np.arange(len(beats))
    is_down = np.zeros(len(beats), dtype=bool)
    is_down[down_idx] = True
    last_down = np.maximum.accumulate(np.where(is_down, index, -1))
    last_down = np.where(last_down < 0, down_idx[0], last_down)
    return (index - last_down) % beats_per_bar + 1
