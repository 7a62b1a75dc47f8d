"""Synthetic beat/downbeat activations for testing and benchmarking post-processing.

Shared by ``tests/test_grid.py``, ``tests/test_dbn.py``, ``tests/test_peaks.py``
and ``benchmarks/bench_grid.py``. Frame ``i`` of an activation is at ``i / fps`` seconds
(the convention of the whole library). Bumps are Gaussians centred on the exact
(sub-frame) event times, so a method that recovers sub-frame timing can be checked
against the true times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SyntheticTrack",
    "constant_tempo_beats",
    "tempo_curve_beats",
    "ramp_beats",
    "tempo_change_beats",
    "bump_activation",
    "synthetic_activations",
    "make_track",
]


@dataclass
class SyntheticTrack:
    """Ground truth and activations of one synthetic track."""

    beat_times: np.ndarray  # seconds
    positions: np.ndarray  # 1 = downbeat
    beat_activation: np.ndarray  # [T] at fps
    downbeat_activation: np.ndarray  # [T] at fps
    fps: float
    duration_s: float

    @property
    def downbeat_times(self) -> np.ndarray:
        return self.beat_times[self.positions == 1]


def _positions(n_beats: int, beats_per_bar: int, first_position: int) -> np.ndarray:
    return (np.arange(n_beats) + first_position - 1) % beats_per_bar + 1


def constant_tempo_beats(
    bpm: float, duration_s: float, offset_s: float = 0.0, beats_per_bar: int = 4, first_position: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Beats ``offset_s + k * 60 / bpm`` below ``duration_s`` and their bar positions."""
    period = 60.0 / bpm
    n = int(np.ceil((duration_s - offset_s) / period)) if duration_s > offset_s else 0
    times = offset_s + period * np.arange(n)
    times = times[times < duration_s]
    return times, _positions(len(times), beats_per_bar, first_position)


def tempo_curve_beats(
    bpm_of_time, duration_s: float, offset_s: float = 0.0, beats_per_bar: int = 4, first_position: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Beats of a time-varying tempo: beat phase is the integral of ``bpm_of_time(t) / 60``.

    ``bpm_of_time`` maps an array of times (s) to BPM; the first beat is at ``offset_s``.
    """
    t = np.arange(offset_s, duration_s + 1.0, 1e-3)
    phase = np.concatenate([[0.0], np.cumsum(bpm_of_time(t[:-1]) / 60.0 * np.diff(t))])
    n = int(np.floor(phase[-1])) + 1
    times = np.interp(np.arange(n), phase, t)
    times = times[times < duration_s]
    return times, _positions(len(times), beats_per_bar, first_position)


def ramp_beats(bpm_start: float, bpm_end: float, duration_s: float, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Beats of a tempo that changes linearly from ``bpm_start`` to ``bpm_end``."""
    return tempo_curve_beats(lambda t: bpm_start + (bpm_end - bpm_start) * t / duration_s, duration_s, **kwargs)


def tempo_change_beats(
    bpm_before: float, bpm_after: float, change_s: float, duration_s: float, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """Beats of a tempo that jumps from ``bpm_before`` to ``bpm_after`` at ``change_s``."""
    return tempo_curve_beats(lambda t: np.where(t < change_s, bpm_before, bpm_after), duration_s, **kwargs)


def bump_activation(
    times: np.ndarray, n_frames: int, fps: float, heights: np.ndarray | float = 1.0, width_s: float = 0.02
) -> np.ndarray:
    """[n_frames] float64: the maximum of Gaussian bumps (std ``width_s``) at ``times``."""
    times = np.asarray(times, dtype=float)
    heights = np.broadcast_to(np.asarray(heights, dtype=float), times.shape)
    act = np.zeros(n_frames)
    radius = int(np.ceil(4 * width_s * fps))
    offsets = np.arange(-radius, radius + 1)
    centre = np.round(times * fps).astype(int)
    frames = centre[:, None] + offsets[None, :]
    values = heights[:, None] * np.exp(-0.5 * ((frames / fps - times[:, None]) / width_s) ** 2)
    ok = (frames >= 0) & (frames < n_frames)
    np.maximum.at(act, frames[ok], values[ok])
    return act


def synthetic_activations(
    beat_times: np.ndarray,
    positions: np.ndarray,
    duration_s: float,
    fps: float = 50.0,
    *,
    rng: np.random.Generator | int | None = 0,
    noise: float = 0.0,
    missing: float = 0.0,
    extra: float = 0.0,
    jitter_s: float = 0.0,
    width_s: float = 0.02,
    beat_heights: tuple[float, float] = (0.7, 1.0),
    downbeat_height: tuple[float, float] = (0.6, 0.9),
    strong_every: int = 0,
    weak_height: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat activations ([T] float32 in [0, 1]) for the given beats.

    noise: std of additive Gaussian noise (absolute value, then clipped to [0, 1]).
    missing: fraction of beats (and downbeats) left without a bump.
    extra: number of spurious bumps as a fraction of the number of beats (random times,
        heights uniform in 0.3-0.8).
    jitter_s: std of Gaussian timing jitter of the bumps around the true times.
    strong_every: if > 1, only every ``strong_every``-th beat gets a full bump, the others
        ``weak_height`` times as high (a strong half-tempo pulse, an octave trap).
    """
    rng = np.random.default_rng(rng)
    n_frames = int(np.floor(duration_s * fps)) + 1
    beat_times = np.asarray(beat_times, dtype=float)
    positions = np.asarray(positions)
    n = len(beat_times)
    heights = rng.uniform(*beat_heights, size=n)
    if strong_every > 1:
        heights[np.arange(n) % strong_every != 0] *= weak_height
    keep = rng.random(n) >= missing
    centres = beat_times + rng.normal(0.0, jitter_s, size=n) if jitter_s > 0 else beat_times
    beat = bump_activation(centres[keep], n_frames, fps, heights[keep], width_s)
    n_extra = int(round(extra * n))
    if n_extra:
        extra_times = rng.uniform(0.0, duration_s, size=n_extra)
        beat = np.maximum(beat, bump_activation(extra_times, n_frames, fps, rng.uniform(0.3, 0.8, n_extra), width_s))
    down = positions == 1
    keep_down = keep & down
    down_heights = np.minimum(rng.uniform(*downbeat_height, size=n), heights)
    downbeat = bump_activation(centres[keep_down], n_frames, fps, down_heights[keep_down], width_s)
    if noise > 0:
        beat = beat + np.abs(rng.normal(0.0, noise, size=n_frames))
        downbeat = downbeat + np.abs(rng.normal(0.0, noise, size=n_frames))
    return np.clip(beat, 0.0, 1.0).astype(np.float32), np.clip(downbeat, 0.0, 1.0).astype(np.float32)


def make_track(
    beat_times: np.ndarray, positions: np.ndarray, duration_s: float, fps: float = 50.0, **kwargs
) -> SyntheticTrack:
    """A :class:`SyntheticTrack` from beats; ``kwargs`` go to :func:`synthetic_activations`."""
    beat, downbeat = synthetic_activations(beat_times, positions, duration_s, fps, **kwargs)
    return SyntheticTrack(np.asarray(beat_times), np.asarray(positions), beat, downbeat, fps, duration_s)
