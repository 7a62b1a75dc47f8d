"""Tests for beatgrid.decoding.peaks: calibration, peak picking and downbeat snapping."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest
import torch
from beatgrid.decoding.peaks import DEFAULT_MIN_INTERVAL_S, calibrate, pick_peaks, snap_downbeats
from tests.synthetic_activations import bump_activation, constant_tempo_beats, make_track

FPS = 50.0


def test_peaks_of_a_synthetic_track_are_its_beats():
    beats, positions = constant_tempo_beats(128.37, 60.0, 0.0)
    clean = make_track(beats, positions, 60.0, FPS, rng=0)
    times = pick_peaks(clean.beat_activation, FPS, threshold=0.5)
    assert len(times) == len(beats)  # including the beat on frame 0
    assert np.max(np.abs(times - beats)) <= 0.5 / FPS + 1e-9  # frame times: within half a frame
    assert np.allclose(times * FPS, np.round(times * FPS))
    noisy = make_track(beats, positions, 60.0, FPS, rng=0, noise=0.1, missing=0.0)
    assert mir_eval.beat.f_measure(beats, pick_peaks(noisy.beat_activation, FPS)) == 1.0


def test_interpolation_recovers_sub_frame_times():
    beats = np.array([1.0, 1.507, 2.013, 2.5199])
    act = bump_activation(beats, 200, FPS, 1.0, width_s=0.02)
    assert np.max(np.abs(pick_peaks(act, FPS, interpolate=True) - beats)) < 0.003
    assert np.max(np.abs(pick_peaks(act, FPS) - beats)) > 0.005  # frame times are coarser


def test_threshold_is_inclusive_and_weak_peaks_are_dropped():
    act = np.zeros(100)
    act[[10, 40, 70]] = [0.5, 0.49, 0.9]
    assert np.allclose(pick_peaks(act, FPS, threshold=0.5), [0.2, 1.4])


def test_minimum_interval_keeps_the_higher_of_two_close_peaks():
    act = np.zeros(200)
    act[[50, 53, 100, 112]] = [0.6, 0.9, 0.8, 0.7]
    assert np.allclose(pick_peaks(act, FPS), [53 / FPS, 100 / FPS, 112 / FPS])  # default 70 ms
    assert np.allclose(pick_peaks(act, FPS, min_interval_s=0.3), [53 / FPS, 100 / FPS])
    assert np.allclose(pick_peaks(act, FPS, bpm_max=200.0), [53 / FPS, 100 / FPS])  # 0.3 s
    assert len(pick_peaks(act, FPS, min_interval_s=0.0)) == 4
    assert DEFAULT_MIN_INTERVAL_S == pytest.approx(0.07)


def test_bpm_max_still_allows_beats_exactly_at_that_tempo():
    beats, positions = constant_tempo_beats(200.0, 20.0, 0.1)  # 15 frames apart
    track = make_track(beats, positions, 20.0, FPS, rng=1)
    assert len(pick_peaks(track.beat_activation, FPS, bpm_max=200.0)) == len(beats)


def test_edges_plateaus_and_empty_input():
    act = np.array([0.9, 0.2, 0.1, 0.8, 0.8, 0.1, 0.3, 0.6, 0.7])
    assert np.allclose(pick_peaks(act, 1.0, min_interval_s=0.0), [0.0, 3.0, 8.0])
    assert np.allclose(pick_peaks(act, 1.0, min_interval_s=0.0, interpolate=True), [0.0, 3.5, 8.0])
    assert len(pick_peaks(np.zeros(10), FPS)) == 0
    assert len(pick_peaks(np.zeros(0), FPS)) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(activation=np.zeros((10, 2))), "1-D"),
        (dict(activation=np.array([0.1, np.inf])), "NaN or infinite"),
        (dict(fps=0.0), "fps"),
        (dict(min_interval_s=-1.0), "min_interval_s"),
        (dict(bpm_max=0.0), "bpm_max"),
    ],
)
def test_pick_peaks_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pick_peaks(**(dict(activation=np.zeros(10), fps=FPS) | kwargs))


@pytest.mark.parametrize("meter", [3, 4])
def test_downbeats_give_positions_and_the_meter(meter):
    beats, positions = constant_tempo_beats(110.0, 30.0, 0.3, meter, first_position=2)
    track = make_track(beats, positions, 30.0, FPS, rng=2, noise=0.03)
    found = pick_peaks(track.beat_activation, FPS)
    assert mir_eval.beat.f_measure(beats, found) == 1.0
    est = snap_downbeats(found, track.downbeat_activation, FPS)
    assert np.array_equal(est, positions)  # first beat (before the first downbeat) counted back


def test_downbeats_between_beats_snap_to_the_nearest_and_missing_ones_keep_the_count():
    beats = np.arange(16) * 0.5
    down = np.zeros(500)
    down[[2, 98, 251]] = 1.0  # near beats 0, 4 (at 1.96 s) and 10 (5.02 s); the one at beat 8 is missing
    positions = snap_downbeats(beats, down, FPS, beats_per_bar=4)
    assert list(positions) == [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 1, 2, 3, 4, 1, 2]


def test_meter_is_the_most_common_bar_length():
    beats = np.arange(20) * 0.5
    down = np.zeros(600)
    down[[0, 150, 300, 400]] = 1.0  # bars of 6, 6 and 4 beats
    positions = snap_downbeats(beats, down, FPS)
    assert positions[0] == 1 and positions[6] == 1 and positions[12] == 1 and positions[16] == 1
    assert positions.max() == 6


def test_no_downbeat_means_unknown_positions():
    beats = np.arange(10) * 0.5
    assert np.all(snap_downbeats(beats, np.zeros(300), FPS) == 0)
    assert len(snap_downbeats(np.empty(0), np.ones(300), FPS)) == 0


def test_snap_downbeats_rejects_bad_input():
    with pytest.raises(ValueError, match="sorted"):
        snap_downbeats(np.array([1.0, 0.5]), np.zeros(100), FPS)
    with pytest.raises(ValueError, match="beats_per_bar"):
        snap_downbeats(np.array([0.5, 1.0]), np.zeros(100), FPS, beats_per_bar=0)
    with pytest.raises(ValueError, match="1-D"):
        snap_downbeats(np.zeros((2, 2)), np.zeros(100), FPS)


@pytest.mark.parametrize("p, pos_weight", [(0.5, 13.0), (0.1, 13.0), (0.8, 50.0), (0.3, 2.5)])
def test_calibrate_recovers_the_probability_weighted_bce_overstates(p, pos_weight):
    """Fit the one logit that minimises BCE with ``pos_weight`` on labels that are 1 with
    probability p: its sigmoid overstates p, and calibrate gives p back."""
    labels = torch.tensor([1.0] * int(round(1000 * p)) + [0.0] * int(round(1000 * (1 - p))))
    logit = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([logit], lr=0.5, max_iter=200)

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logit.expand_as(labels), labels, pos_weight=torch.tensor(pos_weight))
        loss.backward()
        return loss

    optimiser.step(closure)
    overstated = float(torch.sigmoid(logit.detach()))
    assert overstated > p + 0.05
    assert float(calibrate(np.array([overstated]), pos_weight)[0]) == pytest.approx(p, abs=2e-3)


def test_calibrate_weights_each_column_and_keeps_the_ends():
    q = np.array([[0.0, 0.0], [0.93, 0.93], [1.0, 1.0]], dtype=np.float32)
    p = calibrate(q, [13.0, 50.0])
    assert p.dtype == np.float32 and p.shape == q.shape
    np.testing.assert_allclose(p[:, 0], [0.0, 0.93 / (0.93 + 13 * 0.07), 1.0], rtol=1e-5)
    np.testing.assert_allclose(p[:, 1], [0.0, 0.93 / (0.93 + 50 * 0.07), 1.0], rtol=1e-5)
    assert np.all(np.diff(calibrate(np.linspace(0, 1, 101), 13.0)) > 0)  # order is kept
    np.testing.assert_array_equal(calibrate(q, None), q)
    np.testing.assert_allclose(calibrate(q, 1.0), q)


@pytest.mark.parametrize("pos_weight, message", [([1.0, 2.0, 3.0], "3 values"), (0.0, "positive"),
                                                 ([float("nan"), 1.0], "positive")])
def test_calibrate_rejects_bad_weights(pos_weight, message):
    with pytest.raises(ValueError, match=message):
        calibrate(np.zeros((10, 2)), pos_weight)
