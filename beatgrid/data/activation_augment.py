"""Augmentation and simulation of frame-wise beat activations for training the LTM.

The Learned Temporal Model (LTM) is trained on CRNN activations ``[T, 2]`` (beat,
downbeat probability per frame). On the CRNN's own training tracks those activations
are near-perfect: tall, sharp peaks exactly on the annotated beats. An LTM trained
only on them learns to trust its input and has nothing to correct. On unseen tracks
the CRNN misses beats, fires on off-beats, blurs and lowers its peaks and places them
a frame or two early or late. :class:`ActivationAugment` makes training inputs look
like the latter; the targets are left untouched, so the LTM learns to recover the
annotated beats from degraded evidence.

:func:`simulate_activations` renders CRNN-like activations from known beat times
(for tests, benchmarks and the synthetic input-source comparison, not for training).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from ..decoding.peaks import activation_pair

__all__ = ["ActivationAugment", "simulate_activations"]


def _bump(n_frames: int, centre: float, sigma: float) -> tuple[slice, np.ndarray]:
    """A unit-height Gaussian bump at ``centre`` (frames), cut to +-4 sigma and to ``[0, n_frames)``."""
    lo = max(int(np.floor(centre - 4 * sigma)), 0)
    hi = min(int(np.ceil(centre + 4 * sigma)) + 1, n_frames)
    frames = np.arange(lo, hi)
    return slice(lo, hi), np.exp(-0.5 * ((frames - centre) / sigma) ** 2)


def _add_peaks(channel: np.ndarray, centres: np.ndarray, heights: np.ndarray, sigma: float) -> None:
    """Raise ``channel`` in place to ``height * bump`` around each centre (max, not sum)."""
    for centre, height in zip(centres, heights):
        window, bump = _bump(len(channel), float(centre), sigma)
        np.maximum(channel[window], height * bump, out=channel[window])


@dataclass(frozen=True)
class ActivationAugment:
    """Random degradation of activations ``[T, 2]`` (probabilities at ``fps``).

    Called as ``augment(activations, targets, rng) -> (activations, targets)``, the
    signature of :class:`beatgrid.data.dataset.FrameDataset`'s ``augment``. Each
    operation runs with its own probability ``p_*``, in this order:

    1. time jitter: each beat peak moves by ``round(N(0, jitter_frames))`` frames
       (at most 3), the activation warped smoothly in between (both columns alike);
    2. peak dropout: a fraction ``U(dropout_fraction)`` of peaks (per column) is
       attenuated to ``U(0, 0.3)`` of its height;
    3. false peaks: with ``p_offbeat``, a fraction ``U(offbeat_fraction)`` of the
       midpoints between consecutive beat peaks gets a peak of height ``U(0.3, 1.0)``
       times the column's maximum (off-beat confusion, the CRNN's typical error on
       syncopated music); with ``p_spurious``, ``Poisson(U(spurious_per_s) * duration)``
       peaks of height ``U(0.2, 1.0)`` times the maximum at random frames (per column);
       with ``p_downbeat_confusion``, a copy of some non-downbeat beat peaks in the
       downbeat column. False peaks as tall as true ones force the LTM to tell them
       apart by their timing (the metre), not by their height;
    4. blur: Gaussian smoothing with ``sigma = U(blur_sigma_frames)`` frames;
    5. gain/gamma: ``gain * a ** gamma`` with ``gain ~ U(gain)``, ``gamma ~ U(gamma)``
       per column; with ``p_modulation``, a slowly varying factor (``U(modulation)``
       every 4 frames, linear in between) that gives each peak its own height;
    6. noise: additive Gaussian noise ``N(0, U(0, noise_std))``;

    and the result is clipped to [0, 1]. Targets are returned unchanged: the LTM learns
    to recover the annotated beats from the degraded evidence.
    """

    fps: float = 50.0
    p_jitter: float = 0.5
    jitter_frames: float = 1.0
    p_dropout: float = 0.5
    dropout_fraction: tuple[float, float] = (0.0, 0.3)
    p_offbeat: float = 0.5
    offbeat_fraction: tuple[float, float] = (0.0, 0.3)
    p_spurious: float = 0.5
    spurious_per_s: tuple[float, float] = (0.0, 1.0)
    p_downbeat_confusion: float = 0.3
    p_blur: float = 0.5
    blur_sigma_frames: tuple[float, float] = (0.5, 2.0)
    p_gain: float = 0.7
    gain: tuple[float, float] = (0.4, 1.0)
    gamma: tuple[float, float] = (0.5, 2.0)
    p_modulation: float = 0.7
    modulation: tuple[float, float] = (0.3, 1.0)
    p_noise: float = 0.5
    noise_std: float = 0.05
    peak_height: float = 0.1  # minimum height of what counts as a peak (jitter, dropout)

    def __call__(
        self, activations: np.ndarray, targets: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        act = activation_pair(activations)
        n_frames = len(act)
        if n_frames == 0:
            return act.copy(), targets
        act = act.copy()
        if rng.random() < self.p_jitter:
            act = self._jitter(act, rng)
        if rng.random() < self.p_dropout:
            for col in range(2):
                peaks, _ = find_peaks(act[:, col], height=self.peak_height, distance=3)
                drop = peaks[rng.random(len(peaks)) < rng.uniform(*self.dropout_fraction)]
                for peak in drop:
                    act[max(peak - 3, 0) : peak + 4, col] *= rng.uniform(0.0, 0.3)
        if rng.random() < self.p_offbeat:
            beats, _ = find_peaks(act[:, 0], height=self.peak_height, distance=3)
            gaps = np.diff(beats)
            midpoints = (beats[:-1] + 0.5 * gaps)[gaps < 2 * self.fps]  # no bridge over long breaks
            chosen = midpoints[rng.random(len(midpoints)) < rng.uniform(*self.offbeat_fraction)]
            level = act[:, 0].max()
            _add_peaks(act[:, 0], chosen, level * rng.uniform(0.3, 1.0, len(chosen)), sigma=1.0)
        if rng.random() < self.p_spurious:
            for col in range(2):
                n_peaks = rng.poisson(rng.uniform(*self.spurious_per_s) * n_frames / self.fps)
                centres = rng.uniform(0, n_frames, n_peaks)
                level = act[:, col].max()
                _add_peaks(act[:, col], centres, level * rng.uniform(0.2, 1.0, n_peaks), sigma=1.0)
        if rng.random() < self.p_downbeat_confusion:
            beats, _ = find_peaks(act[:, 0], height=self.peak_height, distance=3)
            beats = beats[act[beats, 1] < 0.5 * act[beats, 0]]  # beats that are not downbeats
            chosen = beats[rng.random(len(beats)) < rng.uniform(0.1, 0.5)]
            heights = act[chosen, 0] * rng.uniform(0.2, 0.8, len(chosen))
            _add_peaks(act[:, 1], chosen.astype(float), heights, sigma=1.0)
        if rng.random() < self.p_blur:
            act = gaussian_filter1d(act, rng.uniform(*self.blur_sigma_frames), axis=0, mode="nearest")
        if rng.random() < self.p_gain:
            gain = rng.uniform(*self.gain, size=2)
            gamma = rng.uniform(*self.gamma, size=2)
            act = gain * np.clip(act, 0.0, 1.0) ** gamma
        if rng.random() < self.p_modulation:
            knots = np.arange(0, n_frames + 4, 4)
            frames = np.arange(n_frames)
            act = act * np.stack(
                [np.interp(frames, knots, rng.uniform(*self.modulation, len(knots))) for _ in range(2)], axis=1
            )
        if rng.random() < self.p_noise:
            act = act + rng.normal(0.0, rng.uniform(0.0, self.noise_std), size=act.shape)
        return np.clip(act, 0.0, 1.0).astype(np.float32), targets

    def _jitter(self, act: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Shift each beat peak by a few frames; warp linearly between peaks."""
        peaks, _ = find_peaks(act[:, 0], height=self.peak_height, distance=3)
        if len(peaks) == 0:
            return act
        shifts = np.clip(np.round(rng.normal(0.0, self.jitter_frames, len(peaks))), -3, 3)
        # Peaks closer than 8 frames could swap order; leave those in place.
        crowded = np.diff(peaks, prepend=-(10**9), append=10**9)
        shifts[np.minimum(crowded[:-1], crowded[1:]) < 8] = 0
        frames = np.arange(len(act), dtype=float)
        displacement = np.interp(frames, peaks + shifts, shifts)  # output frame -> shift
        source = frames - displacement
        return np.stack([np.interp(source, frames, act[:, c]) for c in range(2)], axis=1)


def simulate_activations(
    beat_times: np.ndarray,
    downbeat_times: np.ndarray,
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    *,
    confidence: tuple[float, float] = (0.5, 1.0),
    miss_rate: float = 0.1,
    offbeat_rate: float = 0.15,
    spurious_per_s: float = 0.3,
    jitter_s: float = 0.015,
    width_frames: float = 1.0,
    downbeat_miss_rate: float = 0.2,
    downbeat_confusion_rate: float = 0.15,
    noise_std: float = 0.03,
) -> np.ndarray:
    """CRNN-like activations ``[n_frames, 2]`` (probabilities at ``fps``) for known beats.

    Each beat (seconds) becomes a Gaussian peak of width ``width_frames`` and height
    ``U(confidence)`` displaced by ``N(0, jitter_s)`` seconds; ``miss_rate`` of beats
    get no peak; ``offbeat_rate`` of inter-beat midpoints get a false peak (the typical
    CRNN error on syncopated music); ``spurious_per_s`` random false peaks per second;
    downbeats likewise in column 1 with ``downbeat_miss_rate`` misses and
    ``downbeat_confusion_rate`` of the other beats confused for downbeats; finally
    additive Gaussian noise of ``noise_std``. With ``confidence=(0.95, 1.0)`` and all
    error rates 0 this mimics a CRNN on its own training tracks.
    """
    beat_times = np.asarray(beat_times, dtype=float)
    downbeat_times = np.asarray(downbeat_times, dtype=float)
    act = np.zeros((n_frames, 2), dtype=np.float64)

    def peaks(times: np.ndarray, miss: float, col: int) -> None:
        kept = times[rng.random(len(times)) >= miss]
        centres = (kept + rng.normal(0.0, jitter_s, len(kept))) * fps
        _add_peaks(act[:, col], centres, rng.uniform(*confidence, len(kept)), width_frames)

    peaks(beat_times, miss_rate, 0)
    peaks(downbeat_times, downbeat_miss_rate, 1)
    if len(beat_times) > 1:
        midpoints = 0.5 * (beat_times[1:] + beat_times[:-1])
        chosen = midpoints[rng.random(len(midpoints)) < offbeat_rate]
        _add_peaks(act[:, 0], chosen * fps, rng.uniform(0.3, 0.8, len(chosen)), width_frames)
    is_downbeat = np.isin(np.round(beat_times * fps), np.round(downbeat_times * fps))
    confused = beat_times[~is_downbeat]
    confused = confused[rng.random(len(confused)) < downbeat_confusion_rate]
    _add_peaks(act[:, 1], confused * fps, rng.uniform(0.3, 0.7, len(confused)), width_frames)
    n_spurious = rng.poisson(spurious_per_s * n_frames / fps)
    _add_peaks(act[:, 0], rng.uniform(0, n_frames, n_spurious), rng.uniform(0.2, 0.8, n_spurious), 1.0)
    if noise_std > 0:
        act += np.abs(rng.normal(0.0, noise_std, act.shape))
    return np.clip(act, 0.0, 1.0).astype(np.float32)
