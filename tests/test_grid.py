"""Tests for beatgrid.decoding.grid: constant-tempo grid fitting on synthetic activations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from beatgrid.decoding.grid import Beatgrid, fit_beatgrid
from tests.synthetic_activations import (
    bump_activation,
    constant_tempo_beats,
    make_track,
    ramp_beats,
    synthetic_activations,
    tempo_change_beats,
)

FPS = 50.0


def grid_errors_s(grid: Beatgrid, beat_times: np.ndarray) -> np.ndarray:
    """Signed distance of every true beat to its nearest grid line (s)."""
    period = grid.period_s
    k = np.round((beat_times - grid.offset_s) / period)
    return beat_times - (grid.offset_s + k * period)


def random_case(seed: int, duration_s: float | None = None):
    rng = np.random.default_rng(seed)
    bpm = round(float(rng.uniform(60.0, 200.0)), 2)
    duration = float(rng.uniform(30.0, 300.0)) if duration_s is None else duration_s
    offset = float(rng.uniform(0.0, 60.0 / bpm))
    meter = int(rng.choice([3, 4]))
    first_position = int(rng.integers(1, meter + 1))
    beats, positions = constant_tempo_beats(bpm, duration, offset, meter, first_position)
    degradation = dict(
        noise=float(rng.uniform(0.0, 0.15)),
        missing=float(rng.uniform(0.0, 0.25)),
        extra=float(rng.uniform(0.0, 0.25)),
        jitter_s=float(rng.uniform(0.0, 0.008)),
    )
    track = make_track(beats, positions, duration, FPS, rng=seed + 1000, **degradation)
    return bpm, meter, track, degradation


@pytest.mark.parametrize("seed", range(40))
def test_random_constant_tempo_track_is_fitted_to_sub_001_bpm_and_ms_phase(seed):
    bpm, meter, track, degradation = random_case(seed)
    grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
    errors = grid_errors_s(grid, track.beat_times)
    context = f"true {bpm} BPM, {meter}/4, {track.duration_s:.0f} s, {degradation} -> {grid}"
    assert abs(grid.bpm - bpm) < 0.02, context
    assert np.max(np.abs(errors)) < 0.010, context  # every beat of the track, not just the median
    assert grid.beats_per_bar == meter, context
    assert np.min(np.abs(track.downbeat_times - grid.downbeat_offset_s)) < 0.010, context
    assert 0.0 <= grid.offset_s < grid.period_s + 1e-9 and grid.offset_s <= grid.downbeat_offset_s
    assert grid.confidence > 0.5, context


@pytest.mark.parametrize("seed", [7, 8])
def test_ten_minute_tracks_stay_on_the_grid(seed):
    bpm, meter, track, degradation = random_case(seed, duration_s=600.0)
    grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
    assert abs(grid.bpm - bpm) < 0.005, grid
    assert np.max(np.abs(grid_errors_s(grid, track.beat_times))) < 0.010, grid


@pytest.mark.parametrize("bpm", [128.37, 93.27])
def test_seed_failure_tempi_come_back_right(bpm):
    """The seed's 0.5-BPM grid search returned 77.0 and 186.5 for these."""
    beats, positions = constant_tempo_beats(bpm, 240.0, 0.05)
    track = make_track(beats, positions, 240.0, FPS, rng=0)
    grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
    assert abs(grid.bpm - bpm) < 0.002
    assert np.max(np.abs(grid_errors_s(grid, beats))) < 0.002
    assert grid.confidence > 0.9


def alternating_activation(beats: np.ndarray, fps: float, n_frames: int, weak: tuple[float, float],
                           rng: int) -> np.ndarray:
    """Beats whose every other bump is weak: heights 0.8-1.0, the others ``weak``."""
    generator = np.random.default_rng(rng)
    is_weak = np.arange(len(beats)) % 2 == 1
    strong = bump_activation(beats[~is_weak], n_frames, fps, generator.uniform(0.8, 1.0, (~is_weak).sum()))
    return np.maximum(strong, bump_activation(beats[is_weak], n_frames, fps, generator.uniform(*weak, is_weak.sum())))


@pytest.mark.parametrize("bpm", [100.0, 150.0, 185.0])
@pytest.mark.parametrize("with_downbeats", [True, False])
def test_weaker_beats_that_are_still_likely_keep_the_tempo(bpm, with_downbeats):
    """Every other beat at probability 0.55-0.7: a strong half-tempo pulse, but the
    in-between beats are still more likely beats than not."""
    beats, positions = constant_tempo_beats(bpm, 90.0, 0.2)
    _, down = synthetic_activations(beats, positions, 90.0, FPS, rng=1)
    beat = alternating_activation(beats, FPS, len(down), (0.55, 0.7), rng=1)
    grid = fit_beatgrid(beat, FPS, down if with_downbeats else None)
    assert abs(grid.bpm - bpm) < 0.02


@pytest.mark.parametrize("bpm", [70.0, 80.0, 95.0])
def test_offbeats_the_activation_calls_unlikely_give_the_slow_level(bpm):
    """A network that half-believes the off-beats (calibrated 0.3-0.45, as the CRNN's on
    hip-hop and reggae) must not double the tempo, even without downbeats."""
    beats, positions = constant_tempo_beats(bpm, 90.0, 0.2)
    beat, _ = synthetic_activations(beats, positions, 90.0, FPS, rng=2)
    heights = np.random.default_rng(3).uniform(0.3, 0.45, len(beats))
    offbeats = bump_activation(beats + 30.0 / bpm, len(beat), FPS, heights)
    grid = fit_beatgrid(np.maximum(beat, offbeats), FPS)
    assert abs(grid.bpm - bpm) < 0.02


@pytest.mark.parametrize("bpm", [70.0, 90.0])
def test_downbeats_decide_a_level_the_beats_leave_open(bpm):
    """Off-beats at 0.5-0.6 say (barely) double tempo; bars of four slow beats in the
    downbeat activation say otherwise and win."""
    beats, positions = constant_tempo_beats(bpm, 90.0, 0.2)
    beat, down = synthetic_activations(beats, positions, 90.0, FPS, rng=2)
    heights = np.random.default_rng(3).uniform(0.5, 0.6, len(beats))
    ambiguous = np.maximum(beat, bump_activation(beats + 30.0 / bpm, len(beat), FPS, heights))
    assert abs(fit_beatgrid(ambiguous, FPS).bpm - 2 * bpm) < 0.04
    grid = fit_beatgrid(ambiguous, FPS, down)
    assert abs(grid.bpm - bpm) < 0.02 and grid.beats_per_bar == 4


def test_downbeats_keep_the_fast_level_when_in_between_beats_are_doubtful():
    """The mirror case: in-between beats at 0.44-0.5 (barely unlikely) halve the tempo on
    their own; bars of four fast beats in the downbeat activation keep it."""
    beats, positions = constant_tempo_beats(150.0, 90.0, 0.2)
    _, down = synthetic_activations(beats, positions, 90.0, FPS, rng=1)
    beat = alternating_activation(beats, FPS, len(down), (0.44, 0.5), rng=1)
    assert abs(fit_beatgrid(beat, FPS).bpm - 75.0) < 0.02
    assert abs(fit_beatgrid(beat, FPS, down).bpm - 150.0) < 0.02


@pytest.mark.parametrize("bpm", [70.0, 95.0])
def test_weak_offbeat_peaks_do_not_double_the_tempo(bpm):
    beats, positions = constant_tempo_beats(bpm, 90.0, 0.2)
    beat, down = synthetic_activations(beats, positions, 90.0, FPS, rng=2)
    offbeats = bump_activation(beats + 30.0 / bpm, len(beat), FPS, 0.25)
    grid = fit_beatgrid(np.maximum(beat, offbeats), FPS, down)
    assert abs(grid.bpm - bpm) < 0.02


def test_tempo_above_the_range_is_folded_into_it():
    beats, positions = constant_tempo_beats(210.0, 60.0, 0.1)
    track = make_track(beats, positions, 60.0, FPS, rng=3)
    grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation, bpm_min=60, bpm_max=200)
    assert abs(grid.bpm - 105.0) < 0.02


@pytest.mark.parametrize("meter", [3, 4])
@pytest.mark.parametrize("first_position", [1, 2])
def test_meter_and_downbeat_phase_come_from_the_downbeat_activation(meter, first_position):
    beats, positions = constant_tempo_beats(140.0, 60.0, 0.2, meter, first_position)
    track = make_track(beats, positions, 60.0, FPS, rng=4, noise=0.05)
    grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
    assert grid.beats_per_bar == meter
    assert abs(grid.downbeat_offset_s - track.downbeat_times[0]) < 0.005
    duration = track.duration_s
    assert np.array_equal(grid.beat_positions(duration), positions[: len(grid.beat_times(duration))])


def test_without_downbeats_the_bar_starts_on_the_first_beat():
    beats, positions = constant_tempo_beats(120.0, 30.0, 0.3, 3)
    track = make_track(beats, positions, 30.0, FPS, rng=5)
    grid = fit_beatgrid(track.beat_activation, FPS)
    assert grid.beats_per_bar == 4 and grid.downbeat_offset_s == grid.offset_s


def test_a_downbeat_activation_without_bar_structure_is_ignored():
    beats, positions = constant_tempo_beats(120.0, 60.0, 0.1, 3)
    track = make_track(beats, positions, 60.0, FPS, rng=5)
    noise = np.random.default_rng(5).uniform(0.0, 0.2, size=len(track.beat_activation))
    grid = fit_beatgrid(track.beat_activation, FPS, noise)
    assert grid.beats_per_bar == 4 and grid.downbeat_offset_s == grid.offset_s
    assert fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation).beats_per_bar == 3


def test_clean_constant_tempo_gets_high_confidence():
    beats, positions = constant_tempo_beats(123.45, 180.0, 0.1)
    track = make_track(beats, positions, 180.0, FPS, rng=6, noise=0.05, missing=0.1, extra=0.1)
    assert fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation).confidence > 0.8


@pytest.mark.parametrize(
    "beats",
    [
        tempo_change_beats(120.0, 100.0, 60.0, 240.0),  # a quarter of the track at another tempo
        tempo_change_beats(120.0, 132.0, 120.0, 240.0),
        ramp_beats(120.0, 124.0, 240.0),  # a slow 3 % drift
    ],
    ids=["change-at-1-min", "change-at-half", "drift"],
)
def test_tempo_changes_and_drifts_get_low_confidence(beats):
    track = make_track(*beats, 240.0, FPS, rng=7, noise=0.05)
    assert fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation).confidence < 0.5


def test_noise_without_beats_gets_low_confidence():
    noise = np.random.default_rng(8).uniform(0.0, 0.3, size=6000)
    assert fit_beatgrid(noise, FPS).confidence < 0.2


@pytest.mark.parametrize("n_frames", [0, 1, 100, 3000])
def test_silent_activation_gives_a_sane_grid_with_zero_confidence(n_frames):
    grid = fit_beatgrid(np.zeros(n_frames), FPS, np.zeros(n_frames), bpm_min=70, bpm_max=180)
    assert grid.confidence == 0.0
    assert 70 <= grid.bpm <= 180
    assert grid.beats_per_bar in (3, 4)


def test_very_short_track():
    beats, positions = constant_tempo_beats(128.0, 4.0, 0.2)
    track = make_track(beats, positions, 4.0, FPS, rng=9)
    grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
    assert abs(grid.bpm - 128.0) < 0.05
    assert np.max(np.abs(grid_errors_s(grid, beats))) < 0.005


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beat_activation=np.zeros((100, 2))), "1-D"),
        (dict(beat_activation=np.full(100, np.nan)), "NaN"),
        (dict(downbeat_activation=np.zeros(99)), "frames"),
        (dict(bpm_min=200.0, bpm_max=100.0), "bpm_min"),
        (dict(fps=0.0), "fps"),
        (dict(beats_per_bar=()), "beats_per_bar"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(kwargs, message):
    args = dict(beat_activation=np.zeros(100), fps=FPS) | kwargs
    with pytest.raises(ValueError, match=message):
        fit_beatgrid(**args)


def test_beatgrid_beats_positions_and_label_json():
    grid = Beatgrid(bpm=120.0, offset_s=0.25, downbeat_offset_s=0.75, beats_per_bar=4, confidence=0.9)
    times = grid.beat_times(3.0)
    assert np.allclose(times, 0.25 + 0.5 * np.arange(6))
    assert times[-1] < 3.0
    assert list(grid.beat_positions(3.0)) == [4, 1, 2, 3, 4, 1]
    assert np.allclose(grid.downbeat_times(3.0), [0.75, 2.75])
    assert len(grid.beat_times(0.2)) == 0
    label = json.loads(json.dumps(grid.to_label_json("track.wav", 3.0)))
    assert label == {
        "fileName": "track.wav",
        "bpm": 120.0,
        "downbeatOffset": 0.75,
        "duration": 3.0,
        "beatsPerBar": 4,
        "confidence": 0.9,
    }


def test_beatgrid_rejects_impossible_values():
    with pytest.raises(ValueError, match="bpm"):
        Beatgrid(bpm=0.0, offset_s=0.0, downbeat_offset_s=0.0, beats_per_bar=4, confidence=0.0)
    with pytest.raises(ValueError, match="beats_per_bar"):
        Beatgrid(bpm=120.0, offset_s=0.0, downbeat_offset_s=0.0, beats_per_bar=0, confidence=0.0)


def test_meter_and_downbeat_phase_do_not_depend_on_calibration():
    """The bar contrast is taken in log-odds, which calibration only shifts."""
    from beatgrid.decoding.peaks import calibrate

    beats, positions = constant_tempo_beats(128.0, 60.0, 0.25, 3, 2)
    track = make_track(beats, positions, 60.0, FPS, rng=9, noise=0.03)
    raw = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
    calibrated = fit_beatgrid(track.beat_activation, FPS, calibrate(track.downbeat_activation, 50.0))
    assert raw.beats_per_bar == calibrated.beats_per_bar == 3
    assert raw.downbeat_offset_s == pytest.approx(calibrated.downbeat_offset_s)
    assert abs(calibrated.downbeat_offset_s - track.downbeat_times[0]) < 0.005
