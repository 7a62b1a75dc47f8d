"""Constant-tempo beatgrids (BPM + phase + meter) fitted to a beat activation.

:func:`fit_beatgrid` turns a beat activation (and optionally a downbeat activation) at
``fps`` frames per second into a :class:`Beatgrid`: the constant tempo, first beat and
first downbeat that DJ software stores per track. Frame ``i`` is at ``i / fps`` seconds.

Method, in four vectorised stages (no loop over candidate tempi):

1. **Peaks.** Local maxima that rise 30 % of the way from the background (the median
   frame) to a robust reference height (the median of the strongest peaks), refined to
   sub-frame time by parabolic interpolation and weighted by their height.
2. **Coarse tempo.** A comb filter over the autocorrelation of the peak train (first
   four multiples of each candidate period, 0.4 % steps), evaluated for all candidate
   periods at once. Its best period and the metrically related ones (x 1/3, 1/2, 2/3,
   3/2, 2, 3) are the hypotheses.
3. **Precise fit, per hypothesis.** The phase drift of the peaks between 6-second
   windows (at the hypothesis' most coherent harmonic, so a half-tempo hypothesis is
   refined too) corrects the period to ~0.01 %; then peaks are assigned to their nearest
   grid beat and ``t = a + k * period`` is fitted by weighted least squares, rejecting
   off-grid peaks (extra detections) with a shrinking tolerance. With N beats the
   period error falls as N^-1.5, so a 4-minute track gets ~0.001 BPM.
4. **Choice and meter.** The activation is read as a probability per frame (calibrate
   a network's outputs first: :func:`beatgrid.decoding.peaks.calibrate`). Each hypothesis
   scores the log-odds that its grid points are beats (a grid that is twice too fast
   pays for every in-between point the activation does not call a beat), half the
   log-odds that its bar starts are downbeats, and a log-normal tempo prior around
   120 BPM (sigma half an octave) that settles near-ties. Points farther than the
   longest candidate period from any detected peak (breaks, silence) count for no
   hypothesis; an activation that is weak throughout is lifted so that its typical peak
   reads 0.75. The meter and the downbeat phase maximise the contrast of the downbeat
   log-odds on vs. off the bar positions (a comb over bar positions, for each
   ``beats_per_bar`` candidate); in log-odds, calibrating the activation does not
   change them.

``confidence`` is honest about constant tempo: ``aligned_share**4 * sqrt(F)``, where
``aligned_share`` is the share of the beat evidence (in 6 s windows) whose local mean
distance to the grid stays within ~15 ms and ``F`` the grid's F-measure above. A grid
that is off for a quarter of the track (tempo change, drift) keeps about a third of its
confidence, so such tracks fall below 0.5; clean constant-tempo ones stay above 0.8; a
silent or beat-less activation gets 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import find_peaks

from .peaks import frame_activation

__all__ = ["Beatgrid", "fit_beatgrid"]

_SILENCE = 1e-3  # activations below this are treated as silence
_REL_THRESHOLD = 0.3  # peak threshold relative to the reference peak height
_HIT_LEVEL = 0.5  # activation (relative to the reference) that counts as a full grid hit
_COMB_MULTIPLES = 4
_COMB_STEP = 0.004  # relative spacing of the coarse candidate periods
_OCTAVE_RATIOS = np.array([1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0])
_HARMONICS = np.arange(1, 4)
_WINDOW_S = 6.0
_LOGIT_CLIP = 4.6  # log-odds of 0.99
_CONTRAST_EPS = 1e-3  # downbeat probabilities are clipped to [eps, 1 - eps] for the bar contrast
_REFERENCE_LOGIT = math.log(0.75 / 0.25)
# downbeat log-odds count half: a downbeat is a beat already counted once, and the
# downbeat output is the less reliable one (CRNN val F 0.51 vs 0.92 for beats)
_DOWNBEAT_WEIGHT = 0.5
_PRIOR_BPM = 120.0
_PRIOR_SIGMA_OCTAVES = 0.5
_PHASE_TOLERANCE_S = 0.015
_MIN_PEAKS = 4
_MAX_TOLERANCE_S = 0.07  # largest peak-to-grid distance accepted by the fit


@dataclass
class Beatgrid:
    """A constant-tempo beatgrid.

    Attributes:
        bpm: tempo in beats per minute.
        offset_s: time of the first beat at or after 0 s.
        downbeat_offset_s: time of the first downbeat at or after 0 s.
        beats_per_bar: beats per bar (meter).
        confidence: 0..1; low when a constant grid does not fit (tempo drift or change,
            weak or no beat evidence).
    """

    bpm: float
    offset_s: float
    downbeat_offset_s: float
    beats_per_bar: int
    confidence: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.bpm) and self.bpm > 0):
            raise ValueError(f"Beatgrid bpm must be a positive number, got {self.bpm}")
        if int(self.beats_per_bar) < 1:
            raise ValueError(f"Beatgrid beats_per_bar must be >= 1, got {self.beats_per_bar}")
        self.beats_per_bar = int(self.beats_per_bar)

    @property
    def period_s(self) -> float:
        """Beat period in seconds."""
        return 60.0 / self.bpm

    def beat_times(self, duration_s: float) -> np.ndarray:
        """Grid beat times in seconds in ``[0, duration_s)``."""
        period = self.period_s
        if duration_s <= self.offset_s:
            return np.empty(0)
        n = int(math.ceil((duration_s - self.offset_s) / period))
        times = self.offset_s + period * np.arange(n)
        return times[times < duration_s]

    def beat_positions(self, duration_s: float) -> np.ndarray:
        """Bar position (1 = downbeat .. ``beats_per_bar``) of each of :meth:`beat_times`."""
        n = len(self.beat_times(duration_s))
        first_down = int(round((self.downbeat_offset_s - self.offset_s) / self.period_s))
        return (np.arange(n) - first_down) % self.beats_per_bar + 1

    def downbeat_times(self, duration_s: float) -> np.ndarray:
        """Grid downbeat times in seconds in ``[0, duration_s)``."""
        return self.beat_times(duration_s)[self.beat_positions(duration_s) == 1]

    def to_label_json(self, file_name: str, duration_s: float) -> dict:
        """The seed's label JSON (``fileName``, ``bpm``, ``downbeatOffset``, ``duration``)
        plus ``beatsPerBar`` and ``confidence``; times in seconds."""
        return {
            "fileName": str(file_name),
            "bpm": float(self.bpm),
            "downbeatOffset": float(self.downbeat_offset_s),
            "duration": float(duration_s),
            "beatsPerBar": int(self.beats_per_bar),
            "confidence": float(self.confidence),
        }


def _silent_grid(bpm_min: float, bpm_max: float, beats_per_bar: Sequence[int]) -> Beatgrid:
    bpm = float(np.clip(_PRIOR_BPM, bpm_min, bpm_max))
    meter = 4 if 4 in beats_per_bar else int(beats_per_bar[0])
    return Beatgrid(bpm=bpm, offset_s=0.0, downbeat_offset_s=0.0, beats_per_bar=meter, confidence=0.0)


def _detect_peaks(act: np.ndarray, fps: float, bpm_min: float, bpm_max: float):
    """Peak times (s, sub-frame), weights in (0, 1], the floor and reference heights.

    The floor is the median frame (background: beats are sparse), the reference the
    median of the strongest peaks (as many as the slowest tempo gives beats). Peaks must
    rise 30 % of the way from floor to reference; their weight grows from ~0 at that
    threshold to 1 at the reference, so peaks that barely pass (noise) count little.
    """
    empty = np.empty(0)
    maxima, _ = find_peaks(act)
    if len(maxima) == 0:
        return empty, empty, 0.0, 0.0
    floor = float(np.median(act))
    heights = act[maxima]
    n_expected = max(1, int(len(act) / fps * bpm_min / 60.0))  # fewest beats the track can have
    if len(heights) > n_expected:
        heights = np.partition(heights, len(heights) - n_expected)[len(heights) - n_expected :]
    reference = float(np.median(heights))
    if reference - floor < _SILENCE:
        return empty, empty, floor, reference
    threshold = floor + _REL_THRESHOLD * (reference - floor)
    distance = max(1, int(0.25 * 60.0 * fps / bpm_max))
    peaks, _ = find_peaks(act, height=threshold, distance=distance)
    if len(peaks) == 0:
        return empty, empty, floor, reference
    left = act[np.maximum(peaks - 1, 0)]
    centre = act[peaks]
    right = act[np.minimum(peaks + 1, len(act) - 1)]
    curvature = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    times = (peaks + delta) / fps
    weights = np.clip((centre - threshold) / (reference - threshold), 0.02, 1.0)
    return times, weights, floor, reference


def _comb_period(times: np.ndarray, weights: np.ndarray, fps: float, n_frames: int, bpm_min: float, bpm_max: float):
    """Coarse beat period (frames) from a comb filter over the peak train's autocorrelation."""
    period_min = 60.0 * fps / bpm_max
    period_max = 60.0 * fps / bpm_min
    max_lag = int(math.ceil(_COMB_MULTIPLES * period_max)) + 2
    # peak train with sub-frame positions split linearly between two frames
    pos = times * fps
    base = np.floor(pos).astype(int)
    frac = pos - base
    train = np.zeros(n_frames + 2)
    np.add.at(train, base, weights * (1.0 - frac))
    np.add.at(train, base + 1, weights * frac)
    n_fft = next_fast_len(len(train) + max_lag + 1, real=True)
    spec = rfft(train, n_fft)
    acf = irfft(spec * np.conj(spec), n_fft)[: max_lag + 1]
    # unbiased (fewer overlapping frames at long lags) and smoothed by +-2 frames
    overlap = np.maximum(len(train) - np.arange(max_lag + 1), 1) / len(train)
    acf = acf / overlap
    kernel = np.exp(-0.5 * (np.arange(-3, 4) / 1.0) ** 2)
    acf = np.convolve(acf, kernel / kernel.sum(), mode="same")
    n_cand = int(math.ceil(math.log(period_max / period_min) / _COMB_STEP)) + 1
    periods = period_min * np.exp(_COMB_STEP * np.arange(n_cand))
    lags = periods[:, None] * np.arange(1, _COMB_MULTIPLES + 1)[None, :]
    comb = np.interp(lags, np.arange(max_lag + 1), acf, right=0.0).mean(axis=1)
    bpm = 60.0 * fps / periods
    # a mild tempo prior (1 octave) only to pick a metrical level; octaves are resolved later
    prior = np.exp(-0.5 * np.log2(bpm / _PRIOR_BPM) ** 2)
    return float(periods[np.argmax(comb * prior)])


def _window_phasors(times, weights, freq, multiples, win, n_win):
    """``z[c, m, w]``: sum over the peaks in window ``w`` of
    ``weight * exp(2 pi i multiples[c, m] f_c t)``."""
    n_cand, n_mult = multiples.shape
    phase = (2.0 * np.pi * freq[:, None] * multiples)[:, :, None] * times[None, None, :]
    flat = (np.arange(n_cand * n_mult)[:, None] * n_win + win[None, :]).ravel()
    size = n_cand * n_mult * n_win
    zr = np.bincount(flat, (weights * np.cos(phase)).reshape(-1), minlength=size)
    zi = np.bincount(flat, (weights * np.sin(phase)).reshape(-1), minlength=size)
    return (zr + 1j * zi).reshape(n_cand, n_mult, n_win)


def _refine(times: np.ndarray, weights: np.ndarray, periods: np.ndarray):
    """Fit ``t = anchor + k * period`` for each candidate period (seconds) at once.

    The phase statistics use, per candidate, the harmonic (1, 2 or 3 x the candidate's
    frequency) at which the peaks are most coherent: for a half-tempo candidate the
    peaks between its grid lines cancel its fundamental, but not its second harmonic.
    Returns refined periods and anchors, both shape (C,).
    """
    freq = 1.0 / periods  # (C,)
    rows = np.arange(len(periods))
    win = np.floor(times / _WINDOW_S).astype(int)
    n_win = int(win[-1]) + 1
    win_mass = np.bincount(win, weights, minlength=n_win)
    win_time = np.bincount(win, weights * times, minlength=n_win) / np.maximum(win_mass, 1e-12)
    all_harmonics = np.broadcast_to(_HARMONICS, (len(freq), len(_HARMONICS)))
    z = _window_phasors(times, weights, freq, all_harmonics, win, n_win)
    harmonic = np.argmax(np.abs(z).sum(axis=2), axis=1)  # most coherent harmonic (index)
    h = _HARMONICS[harmonic]
    zh = z[rows, harmonic]  # (C, W)
    # 1) phase drift between consecutive windows -> frequency correction (twice)
    if n_win > 1:
        dt = np.diff(win_time)
        valid = (win_mass[1:] > 0) & (win_mass[:-1] > 0)
        for _ in range(2):
            cross = zh[:, 1:] * np.conj(zh[:, :-1])
            mag = np.abs(cross) * valid
            rate = np.angle(cross) / (2.0 * np.pi * np.where(valid, dt, 1.0))
            total = mag.sum(axis=1)
            correction = np.where(total > 0, (mag * rate).sum(axis=1) / np.maximum(total, 1e-300), 0.0)
            freq = freq - correction / h
            zh = _window_phasors(times, weights, freq, h[:, None], win, n_win)[:, 0]
    periods = 1.0 / freq
    # 2) global phase of that harmonic -> anchor, up to which of its h sub-phases; keep
    #    the sub-phase that puts the most peak weight on the grid
    base = np.angle(zh.sum(axis=1)) / (2.0 * np.pi * h) * periods
    shifts = np.arange(_HARMONICS[-1])
    options = base[:, None] + shifts[None, :] * (periods / h)[:, None]  # (C, J)
    resid = times[None, None, :] - options[:, :, None]
    resid -= np.round(resid / periods[:, None, None]) * periods[:, None, None]
    on_grid = (weights * (np.abs(resid) < 0.1 * periods[:, None, None])).sum(axis=2)
    on_grid = np.where(shifts[None, :] < h[:, None], on_grid, -1.0)
    anchors = options[rows, np.argmax(on_grid, axis=1)]
    # 3) assign peaks to grid beats, reject off-grid peaks, weighted least squares
    for frac_tol in (0.25, 0.15, 0.08):
        k = np.round((times[None, :] - anchors[:, None]) / periods[:, None])
        resid = times[None, :] - anchors[:, None] - k * periods[:, None]
        tol = np.minimum(frac_tol * periods, _MAX_TOLERANCE_S)[:, None]
        omega = weights[None, :] * (np.abs(resid) < tol)
        sw = omega.sum(axis=1)
        ok = sw > 0
        sw = np.where(ok, sw, 1.0)
        k_mean = (omega * k).sum(axis=1) / sw
        t_mean = (omega * times[None, :]).sum(axis=1) / sw
        dk = k - k_mean[:, None]
        skk = (omega * dk * dk).sum(axis=1)
        skt = (omega * dk * (times[None, :] - t_mean[:, None])).sum(axis=1)
        ok &= skk > 1e-9
        new_periods = np.where(ok, skt / np.where(ok, skk, 1.0), periods)
        ok &= new_periods > 0
        periods = np.where(ok, new_periods, periods)
        anchors = np.where(ok, t_mean - periods * k_mean, anchors)
    return periods, anchors


def _max3(act: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Maximum of ``act`` over each frame and its two neighbours (1-frame tolerance)."""
    last = len(act) - 1
    return np.maximum(np.maximum(act[np.maximum(frames - 1, 0)], act[frames]), act[np.minimum(frames + 1, last)])


def _grid_support(times, weights, periods, anchors, act, fps, floor, reference):
    """F-measure of each candidate grid against the peaks (recall) and activation (precision)."""
    k = np.round((times[None, :] - anchors[:, None]) / periods[:, None])
    resid = times[None, :] - anchors[:, None] - k * periods[:, None]
    tol = np.minimum(0.07, 0.2 * periods)[:, None]
    recall = (weights[None, :] * (np.abs(resid) < tol)).sum(axis=1) / weights.sum()
    k_first = np.ceil((times[0] - anchors) / periods - 0.5)
    k_last = np.floor((times[-1] - anchors) / periods + 0.5)
    n_grid = np.maximum(k_last - k_first + 1, 1).astype(int)
    idx = np.arange(n_grid.max())
    grid_k = k_first[:, None] + idx[None, :]
    mask = idx[None, :] < n_grid[:, None]
    frames = np.clip(np.round((anchors[:, None] + grid_k * periods[:, None]) * fps).astype(int), 0, len(act) - 1)
    hit = np.clip((_max3(act, frames) - floor) / (_HIT_LEVEL * (reference - floor)), 0.0, 1.0)
    precision = (hit * mask).sum(axis=1) / n_grid
    f_measure = np.where(recall + precision > 0, 2 * recall * precision / np.maximum(recall + precision, 1e-12), 0.0)
    return f_measure, grid_k, mask, frames


def _meter_contrast(down_at_grid: np.ndarray, grid_k: np.ndarray, mask: np.ndarray, meters: Sequence[int]):
    """Best (contrast, meter, phase) of the downbeat evidence on bar positions, per candidate.

    A comb over bar positions: for each meter and phase ``j`` (downbeats are the grid
    beats with ``k % meter == j``), the mean of ``down_at_grid`` (the downbeat log-odds at
    each grid beat) on those beats minus the mean on the others.
    """
    n_cand = len(grid_k)
    values = (down_at_grid * mask).ravel()
    weights = mask.astype(float).ravel()
    k_int = grid_k.astype(np.int64)
    total = values.reshape(n_cand, -1).sum(axis=1)[:, None]
    count = weights.reshape(n_cand, -1).sum(axis=1)[:, None]
    best = np.full(n_cand, -np.inf)
    best_meter = np.zeros(n_cand, dtype=int)
    best_phase = np.zeros(n_cand, dtype=int)
    rows = np.arange(n_cand)
    for meter in meters:  # a handful of meters, not a loop over tempi
        bins = (rows[:, None] * meter + k_int % meter).ravel()
        on_sum = np.bincount(bins, values, minlength=n_cand * meter).reshape(n_cand, meter)
        on_cnt = np.bincount(bins, weights, minlength=n_cand * meter).reshape(n_cand, meter)
        off_cnt = count - on_cnt
        contrast = on_sum / np.maximum(on_cnt, 1) - (total - on_sum) / np.maximum(off_cnt, 1)
        contrast = np.where((on_cnt > 0) & (off_cnt > 0), contrast, -np.inf)
        phase = np.argmax(contrast, axis=1)
        value = contrast[rows, phase]
        better = value > best + 1e-12
        best = np.where(better, value, best)
        best_meter = np.where(better, meter, best_meter)
        best_phase = np.where(better, phase, best_phase)
    return best, best_meter, best_phase


def _significant(contrast, down_at_grid, mask, meter_of) -> bool:
    """Whether the best bar contrast stands out of the downbeat activation's own spread
    (more than 3 standard errors of a difference of means): else it is noise."""
    c = int(np.argmax(contrast))
    values = down_at_grid[c][mask[c]]
    n_on = max(len(values) / meter_of[c], 1.0)
    n_off = max(len(values) - n_on, 1.0)
    standard_error = np.std(values) * math.sqrt(1.0 / n_on + 1.0 / n_off)
    return bool(contrast[c] > max(3.0 * standard_error, _SILENCE))


def _log_odds(p: np.ndarray, eps: float) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``."""
    p = np.clip(p, eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


def _near_peaks(point_time: np.ndarray, times: np.ndarray, reach_s: float) -> np.ndarray:
    """Whether each grid point (s) lies within ``reach_s`` of a detected peak: the parts
    of the track where the activation hears beats at all (breaks and silence do not
    count for or against any hypothesis)."""
    idx = np.searchsorted(times, point_time)
    before = times[np.clip(idx - 1, 0, len(times) - 1)]
    after = times[np.clip(idx, 0, len(times) - 1)]
    distance = np.minimum(np.abs(point_time - before), np.abs(after - point_time))
    return distance <= reach_s


def _level_evidence(point_act: np.ndarray, active: np.ndarray, reference: float) -> np.ndarray:
    """Log-odds that each grid point is a beat (or downbeat), 0 where not ``active``.

    The activation is read as a probability: a point above 0.5 is evidence for the grid,
    one below against, so a grid twice too fast pays for its in-between points unless the
    activation calls them beats. Activations that are weak throughout (the strongest peaks,
    ``reference``, below 0.75) are lifted until their typical peak reads 0.75, so an unsure
    model does not make every grid look wrong. Clipped to +-``_LOGIT_CLIP``.
    """
    lift = max(0.0, _REFERENCE_LOGIT - float(_log_odds(np.asarray(reference), 1e-6)))
    evidence = np.clip(_log_odds(point_act, 1e-6) + lift, -_LOGIT_CLIP, _LOGIT_CLIP)
    return np.where(active, evidence, 0.0)


def _confidence(times, weights, period, anchor, f_measure) -> float:
    """``aligned_share**4 * sqrt(F)``, in 0..1.

    ``aligned_share``: the share of the beat evidence (peak weight, in 6 s windows)
    lying in windows where most of the evidence is on the grid (well above the share
    that random peaks would have) and its mean distance to the grid is within ~15 ms.
    The fourth power makes a grid that is off for a quarter of the track (a tempo
    change, a drift) lose two thirds of its confidence.
    ``F``: how much of the activation the grid explains (see ``_grid_support``).
    """
    k = np.round((times - anchor) / period)
    resid = times - anchor - k * period
    tolerance = min(0.07, 0.2 * period)
    inlier = np.abs(resid) < tolerance
    chance = 2.0 * tolerance / period  # share of randomly placed peaks that fall on the grid
    win = np.floor(times / _WINDOW_S).astype(int)
    mass = np.bincount(win, weights)
    on_grid = np.bincount(win, weights * inlier)
    mean_resid = np.bincount(win, weights * inlier * resid) / np.maximum(on_grid, 1e-12)
    aligned = np.exp(-0.5 * (mean_resid / _PHASE_TOLERANCE_S) ** 2)
    above_chance = (on_grid / np.maximum(mass, 1e-12) - chance) / (1.0 - chance)
    explained = np.clip(2.0 * above_chance, 0.0, 1.0)
    aligned_share = float((mass * aligned * explained).sum() / mass.sum())
    return float(np.clip(aligned_share**4 * math.sqrt(max(f_measure, 0.0)), 0.0, 1.0))


def fit_beatgrid(
    beat_activation: np.ndarray,
    fps: float,
    downbeat_activation: np.ndarray | None = None,
    bpm_min: float = 60.0,
    bpm_max: float = 200.0,
    beats_per_bar: Sequence[int] = (3, 4),
) -> Beatgrid:
    """Fit a constant-tempo :class:`Beatgrid` to a beat activation.

    Args:
        beat_activation: [T] beat probability per frame (frame ``i`` at ``i / fps`` s),
            calibrated: 0.5 means "as likely a beat as not", which decides the tempo
            octave (see :func:`beatgrid.decoding.peaks.calibrate`).
        fps: frames per second of the activations.
        downbeat_activation: optional [T] downbeat probability; gives the meter and the
            downbeat phase and helps resolve tempo octaves. Without it the grid has
            4 beats per bar (or the first of ``beats_per_bar``) starting at the first beat.
        bpm_min, bpm_max: tempo range in BPM.
        beats_per_bar: meters to choose from.

    Returns:
        The grid; a silent or beat-less activation gives a grid with confidence 0.
    """
    act = frame_activation(beat_activation, "beat_activation")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if not (0 < bpm_min < bpm_max):
        raise ValueError(f"need 0 < bpm_min < bpm_max, got bpm_min={bpm_min}, bpm_max={bpm_max}")
    meters = tuple(int(m) for m in beats_per_bar)
    if not meters or min(meters) < 1:
        raise ValueError(f"beats_per_bar must be a non-empty sequence of positive ints, got {beats_per_bar}")
    down = None
    if downbeat_activation is not None:
        down = frame_activation(downbeat_activation, "downbeat_activation")
        if down.shape != act.shape:
            raise ValueError(
                f"downbeat_activation has {down.shape[0]} frames but beat_activation has {act.shape[0]}"
            )

    times, weights, floor, reference = _detect_peaks(act, fps, bpm_min, bpm_max)
    if len(times) < _MIN_PEAKS:
        return _silent_grid(bpm_min, bpm_max, meters)

    # coarse tempo and its metrical relatives, all refined at once
    coarse = _comb_period(times, weights, fps, len(act), bpm_min, bpm_max)
    cand = coarse * _OCTAVE_RATIOS / fps  # seconds
    cand_bpm = 60.0 / cand
    cand = cand[(cand_bpm >= bpm_min * 0.99) & (cand_bpm <= bpm_max * 1.01)]
    periods, anchors = _refine(times, weights, cand)
    f_measure, grid_k, mask, frames = _grid_support(times, weights, periods, anchors, act, fps, floor, reference)

    # metrical level: the hypothesis whose grid points are most likely beats (and bars)
    point_time = anchors[:, None] + grid_k * periods[:, None]
    active = mask & _near_peaks(point_time, times, float(periods.max()))
    score = _level_evidence(_max3(act, frames), active, reference).sum(axis=1)
    bpm = 60.0 / periods
    score += -0.5 * (np.log2(bpm / _PRIOR_BPM) / _PRIOR_SIGMA_OCTAVES) ** 2
    has_downbeats = down is not None and down.max() >= _SILENCE
    if has_downbeats:
        down_at_grid = _max3(down, frames)
        # bar contrast in log-odds: calibration (a shift of the logit) does not move it
        down_log_odds = _log_odds(down_at_grid, _CONTRAST_EPS)
        contrast, meter_of, phase_of = _meter_contrast(down_log_odds, grid_k, mask, meters)
        has_downbeats = _significant(contrast, down_log_odds, mask, meter_of)
    if has_downbeats:
        on_bar = (grid_k.astype(np.int64) % meter_of[:, None]) == phase_of[:, None]
        down_reference = _detect_peaks(down, fps, bpm_min / max(meters), bpm_max)[3]
        score += _DOWNBEAT_WEIGHT * _level_evidence(down_at_grid, active & on_bar, down_reference).sum(axis=1)
    best = int(np.argmax(score))

    period, anchor = float(periods[best]), float(anchors[best])
    k0 = math.ceil(-anchor / period - 1e-9)
    offset_s = max(anchor + k0 * period, 0.0)
    if has_downbeats:
        meter, phase = int(meter_of[best]), int(phase_of[best])
        k_down = k0 + (phase - k0) % meter
        downbeat_offset_s = max(anchor + k_down * period, 0.0)
    else:
        meter = 4 if 4 in meters else meters[0]
        downbeat_offset_s = offset_s
    confidence = _confidence(times, weights, period, anchor, float(f_measure[best]))
    return Beatgrid(
        bpm=60.0 / period,
        offset_s=offset_s,
        downbeat_offset_s=downbeat_offset_s,
        beats_per_bar=meter,
        confidence=confidence,
    )
