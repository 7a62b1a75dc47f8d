"""On-the-fly augmentation of log-mel training crops, with their frame targets kept consistent.

:class:`MelAugment` is a callable ``(mel [T, F], targets [T, C], rng) -> (mel, targets)``
for :class:`beatgrid.data.dataset.FrameDataset`'s ``augment`` argument. It works in the
spectrogram domain of the mel store (``log1p(1000 * magnitude)``, see DESIGN.md), so
gain and equalisation are exact: the magnitude is recovered with ``expm1``, scaled, and
compressed again. The transforms, each applied with its own probability:

- tempo change: the crop is resampled along time by linear interpolation at a random
  rate, and every beat/downbeat is re-placed at ``round(frame / rate)`` with the same
  target widening (so the labels stay as sharp as the original ones);
- pitch shift: the bands are shifted by a few mel bands (an approximation: mel bands are
  not equally spaced in pitch below ~1 kHz), the vacated edge filled with the edge band;
- gain, spectral tilt and a few random EQ bumps (in dB, on the magnitude);
- additive noise at a random signal-to-noise ratio;
- frequency masks and short time masks (SpecAugment), set to silence (0);
- background mixing (off by default, ``p_mix``): another training track's crop, given by the
  dataset, added on the magnitude at a random lower level while the targets stay the main
  track's, so the network learns to follow one pulse among onsets that are not its beats
  (real mixes are full of them; a synthesizer's are not).

Beat targets are never moved by anything but the tempo change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..targets import render_targets, target_event_frames

__all__ = ["MelAugment", "stretch_time"]


def stretch_time(mel: np.ndarray, rate: float) -> np.ndarray:
    """Resample ``mel [T, F]`` along time for a tempo change by ``rate`` (> 1: faster).

    Output frame ``j`` is the linear interpolation of input time ``j * rate``; the
    output has ``max(1, round(T / rate))`` frames.
    """
    n_in = mel.shape[0]
    n_out = max(1, int(round(n_in / rate)))
    source = np.arange(n_out) * rate
    lower = np.clip(np.floor(source).astype(np.int64), 0, n_in - 1)
    upper = np.clip(lower + 1, 0, n_in - 1)
    frac = np.clip(source - lower, 0.0, 1.0).astype(np.float32)[:, None]
    return mel[lower] * (1.0 - frac) + mel[upper] * frac


@dataclass
class MelAugment:
    """Random mel-domain augmentation of a training crop and its targets.

    Probabilities ``p_*`` are per crop; ranges are (low, high) drawn uniformly, the
    tempo rate log-uniformly. ``widen_frames`` / ``widen_value`` must match the
    targets' widening (config ``targets:``) so stretched labels look like the originals.
    """

    p_tempo: float = 0.5
    tempo_rate: tuple[float, float] = (0.8, 1.25)
    p_pitch: float = 0.3
    pitch_bands: int = 3
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-12.0, 6.0)
    p_tilt: float = 0.5
    tilt_db: float = 6.0          # total tilt across the band range, +-
    p_eq: float = 0.3
    eq_db: float = 6.0            # peak gain of each EQ bump, +-
    eq_bumps: int = 2
    p_noise: float = 0.3
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    p_freq_mask: float = 0.5
    freq_mask_bands: int = 12
    freq_masks: int = 2
    p_time_mask: float = 0.3
    time_mask_frames: int = 6
    time_masks: int = 2
    p_mix: float = 0.0
    mix_gain_db: tuple[float, float] = (-20.0, -8.0)  # level of the background crop against the track
    widen_frames: int = 1
    widen_value: float = 0.5

    def __post_init__(self) -> None:
        low, high = self.tempo_rate
        if not 0 < low <= high:
            raise ValueError(f"tempo_rate must be 0 < low <= high, got {self.tempo_rate}")
        if not self.mix_gain_db[0] <= self.mix_gain_db[1]:
            raise ValueError(f"mix_gain_db must be (low, high) with low <= high, got {self.mix_gain_db}")
        for name, value in asdict(self).items():
            if name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")

    @classmethod
    def from_dict(cls, settings: dict | None) -> "MelAugment":
        """Build from a dict of field values (unknown keys raise, naming them)."""
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown MelAugment settings: {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})

    @property
    def needs_background(self) -> bool:
        """Whether a call wants ``background``: another track's mels to mix in
        (:class:`beatgrid.data.dataset.FrameDataset` passes one then)."""
        return self.p_mix > 0

    def __call__(self, mel: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                 background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Augmented copies of ``mel [T, F]`` and ``targets [T, C]`` (float32).

        The tempo change alters T (both outputs keep equal length); every other
        transform keeps shapes. ``background``: ``[T', F]`` mels of another track, mixed in
        with probability ``p_mix`` (:meth:`mix_background`); ignored when ``p_mix`` is 0.
        """
        mel = np.array(mel, dtype=np.float32)
        targets = np.array(targets, dtype=np.float32)
        if mel.ndim != 2 or targets.ndim != 2 or mel.shape[0] != targets.shape[0]:
            raise ValueError(f"mel [T, F] and targets [T, C] must have equal T; got "
                             f"{mel.shape} and {targets.shape}")
        n_bands = mel.shape[1]

        if self.p_tempo and rng.random() < self.p_tempo:
            rate = float(np.exp(rng.uniform(*np.log(self.tempo_rate))))
            mel, targets = self.change_tempo(mel, targets, rate)

        if self.p_pitch and self.pitch_bands and rng.random() < self.p_pitch:
            shift = int(rng.integers(-self.pitch_bands, self.pitch_bands + 1))
            mel = _shift_bands(mel, shift)

        # gain, tilt, EQ and noise on the magnitude (1000 * |X| up to the log1p)
        gain_db = np.zeros(n_bands, dtype=np.float32)
        if self.p_gain and rng.random() < self.p_gain:
            gain_db += rng.uniform(*self.gain_db)
        if self.p_tilt and rng.random() < self.p_tilt:
            gain_db += rng.uniform(-self.tilt_db, self.tilt_db) * np.linspace(-0.5, 0.5, n_bands)
        if self.p_eq and self.eq_bumps and rng.random() < self.p_eq:
            bands = np.arange(n_bands)
            for _ in range(int(rng.integers(1, self.eq_bumps + 1))):
                centre = rng.uniform(0, n_bands)
                width = rng.uniform(2.0, max(3.0, n_bands / 8))
                gain_db += rng.uniform(-self.eq_db, self.eq_db) * np.exp(
                    -0.5 * ((bands - centre) / width) ** 2)
        add_noise = bool(self.p_noise) and rng.random() < self.p_noise
        if np.any(gain_db) or add_noise:
            magnitude = np.expm1(np.maximum(mel, 0.0)) * (10.0 ** (gain_db / 20.0))
            if add_noise:
                snr_db = rng.uniform(*self.noise_snr_db)
                level = magnitude.mean() * 10.0 ** (-snr_db / 20.0)
                magnitude += level * np.abs(rng.standard_normal(magnitude.shape))
            mel = np.log1p(magnitude).astype(np.float32)

        if self.p_freq_mask and self.freq_masks and rng.random() < self.p_freq_mask:
            for _ in range(int(rng.integers(1, self.freq_masks + 1))):
                width = int(rng.integers(1, min(self.freq_mask_bands, n_bands) + 1))
                start = int(rng.integers(0, n_bands - width + 1))
                mel[:, start:start + width] = 0.0
        n_frames = mel.shape[0]
        if self.p_time_mask and self.time_masks and rng.random() < self.p_time_mask:
            for _ in range(int(rng.integers(1, self.time_masks + 1))):
                width = int(rng.integers(1, min(self.time_mask_frames, n_frames) + 1))
                start = int(rng.integers(0, n_frames - width + 1))
                mel[start:start + width] = 0.0
        if self.p_mix and background is not None and rng.random() < self.p_mix:
            mel = self.mix_background(mel, background, rng)
        return mel, targets

    def mix_background(self, mel: np.ndarray, background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``mel [T, F]`` with ``background [T', F]`` (same mel scale) added on the magnitude at a
        level drawn from ``mix_gain_db``: a random ``T``-frame window of it, or it repeated when
        shorter."""
        n_frames = mel.shape[0]
        background = np.asarray(background, dtype=np.float32)
        if background.shape[1] != mel.shape[1]:
            raise ValueError(f"background has {background.shape[1]} bands, the mels {mel.shape[1]}")
        if background.shape[0] >= n_frames:
            start = int(rng.integers(0, background.shape[0] - n_frames + 1))
            background = background[start:start + n_frames]
        else:
            background = np.resize(background, (n_frames, background.shape[1]))  # repeats its rows
        gain = 10.0 ** (rng.uniform(*self.mix_gain_db) / 20.0)
        magnitude = np.expm1(np.maximum(mel, 0.0)) + gain * np.expm1(np.maximum(background, 0.0))
        return np.log1p(magnitude).astype(np.float32)

    def change_tempo(self, mel: np.ndarray, targets: np.ndarray,
                     rate: float) -> tuple[np.ndarray, np.ndarray]:
        """Stretch ``mel`` by ``rate`` (> 1: faster, fewer frames) and move the targets.

        Each event at frame ``f`` moves to ``round(f / rate)``; events that fall past
        the end are dropped. Widening is redrawn with ``widen_frames`` / ``widen_value``.
        """
        stretched = stretch_time(mel, rate).astype(np.float32)
        n_out = stretched.shape[0]
        new_targets = np.zeros((n_out, targets.shape[1]), dtype=np.float32)
        for column in range(targets.shape[1]):
            events = np.round(target_event_frames(targets[:, column]) / rate).astype(np.int64)
            new_targets[:, column] = render_targets(events, n_out, self.widen_frames,
                                                    self.widen_value)
        return stretched, new_targets


def _shift_bands(mel: np.ndarray, shift: int) -> np.ndarray:
    """Move the spectrum ``shift`` bands up (> 0) or down, repeating the edge band."""
    if shift == 0:
        return mel
    shifted = np.empty_like(mel)
    if shift > 0:
        shifted[:, shift:] = mel[:, :-shift]
        shifted[:, :shift] = mel[:, :1]
    else:
        shifted[:, :shift] = mel[:, -shift:]
        shifted[:, shift:] = mel[:, -1:]
    return shifted
