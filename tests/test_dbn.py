"""Tests for beatgrid.decoding.dbn: bar-pointer HMM decoding of beats and downbeats."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest
from beatgrid.decoding.dbn import beat_intervals, tempo_transitions, track_dbn
from tests.synthetic_activations import constant_tempo_beats, make_track, ramp_beats, tempo_change_beats

FPS = 50.0


def dense_viterbi(beat, down, fps, bpm_min, bpm_max, meter, transition_lambda, observation_lambda):
    """Textbook frame-level Viterbi over the explicit (beat, interval, position) states.

    Built from the model's definition, independently of the beat-level recursion in
    beatgrid.decoding.dbn. Returns (log-probability, beat frames, positions).
    """
    intervals = np.arange(round(60 * fps / bpm_max), round(60 * fps / bpm_min) + 1)
    states = [(b, i, phi) for b in range(meter) for i in range(len(intervals)) for phi in range(intervals[i])]
    index = {state: n for n, state in enumerate(states)}
    n_states = len(states)
    ratio = intervals[None, :] / intervals[:, None]
    trans = np.exp(-transition_lambda * np.abs(ratio - 1))
    trans[trans <= np.spacing(1)] = 0
    trans /= trans.sum(axis=1, keepdims=True)
    log_a = np.full((n_states, n_states), -np.inf)
    for (b, i, phi), n in index.items():
        if phi < intervals[i] - 1:
            log_a[n, index[(b, i, phi + 1)]] = 0.0
        else:
            for j in range(len(intervals)):
                if trans[i, j] > 0:
                    log_a[n, index[((b + 1) % meter, j, 0)]] = np.log(trans[i, j])
    any_beat = np.maximum(beat, down)
    eps = 1e-5
    densities = np.stack(
        [
            np.log(np.maximum(1 - any_beat, eps) / (observation_lambda - 1)),
            np.log(np.maximum(any_beat - down, eps)),
            np.log(np.maximum(down, eps)),
        ],
        axis=1,
    )
    kind = np.array(
        [0 if phi / intervals[i] >= 1 / observation_lambda else (2 if b == 0 else 1) for b, i, phi in states]
    )
    obs = densities[:, kind]
    delta = -np.log(n_states) + obs[0]
    back = np.zeros((len(beat), n_states), dtype=int)
    for t in range(1, len(beat)):
        scores = delta[:, None] + log_a
        back[t] = np.argmax(scores, axis=0)
        delta = scores[back[t], np.arange(n_states)] + obs[t]
    path = [int(np.argmax(delta))]
    for t in range(len(beat) - 1, 0, -1):
        path.append(back[t, path[-1]])
    path = path[::-1]
    frames = [t for t, n in enumerate(path) if states[n][2] == 0]
    positions = [states[path[t]][0] + 1 for t in frames]
    return float(np.max(delta)), np.array(frames), np.array(positions)


@pytest.mark.parametrize("transition_lambda", [100.0, 5.0])
@pytest.mark.parametrize("seed", range(3))
def test_decoding_equals_textbook_viterbi(seed, transition_lambda):
    rng = np.random.default_rng(seed)
    fps, bpm_min, bpm_max, n_frames = 10.0, 100.0, 200.0, 90
    # a noisy pulse with irregular intervals (3-5 frames), starting and ending mid-beat
    onsets = 2 + np.cumsum(rng.integers(3, 6, size=30))
    onsets = onsets[onsets < n_frames - 2]
    beat = 0.3 * rng.random(n_frames)
    beat[onsets] = rng.uniform(0.5, 1.0, size=len(onsets))
    down = 0.1 * rng.random(n_frames)
    down[onsets[::3]] = 0.8 * beat[onsets[::3]]
    results = [dense_viterbi(beat, down, fps, bpm_min, bpm_max, m, transition_lambda, 16.0) for m in (3, 4)]
    best = max(results, key=lambda result: result[0])
    if transition_lambda < 10:
        assert len(set(np.diff(best[1]))) > 1  # the path changes tempo: not a trivial case
    times, positions = track_dbn(
        beat,
        down,
        fps=fps,
        bpm_min=bpm_min,
        bpm_max=bpm_max,
        beats_per_bar=(3, 4),
        transition_lambda=transition_lambda,
        correct=False,
        threshold=0.0,
    )
    assert np.array_equal(np.round(times * fps).astype(int), best[1])
    assert np.array_equal(positions, best[2])


def test_tempo_transitions_prefer_steady_tempo_and_are_normalised():
    intervals = beat_intervals(50.0, 60.0, 200.0)
    assert intervals[0] == 15 and intervals[-1] == 50
    log_trans = tempo_transitions(intervals, 100.0)
    prob = np.exp(log_trans)
    assert np.allclose(prob.sum(axis=1), 1.0)
    assert np.all(np.argmax(prob, axis=1) == np.arange(len(intervals)))
    assert len(beat_intervals(50.0, 60.0, 200.0, num_tempi=20)) == 20


@pytest.mark.parametrize("bpm_end", [129.6, 110.4], ids=["ramp-up-8%", "ramp-down-8%"])
def test_follows_an_8_percent_tempo_ramp(bpm_end):
    beats, positions = ramp_beats(120.0, bpm_end, 120.0, offset_s=0.3)
    track = make_track(beats, positions, 120.0, FPS, rng=1, noise=0.05, missing=0.1, extra=0.05, jitter_s=0.005)
    times, est_positions = track_dbn(track.beat_activation, track.downbeat_activation, fps=FPS)
    assert mir_eval.beat.f_measure(beats, times) > 0.95
    assert mir_eval.beat.f_measure(track.downbeat_times, times[est_positions == 1]) > 0.9


def test_follows_a_tempo_change():
    beats, positions = tempo_change_beats(100.0, 130.0, 30.0, 60.0)
    track = make_track(beats, positions, 60.0, FPS, rng=2, noise=0.05)
    times, _ = track_dbn(track.beat_activation, track.downbeat_activation, fps=FPS)
    assert mir_eval.beat.f_measure(beats, times) > 0.95


@pytest.mark.parametrize("meter", [3, 4])
def test_bar_positions_and_meter(meter):
    beats, positions = constant_tempo_beats(93.27, 40.0, 0.2, meter, first_position=2)
    track = make_track(beats, positions, 40.0, FPS, rng=3, noise=0.03)
    times, est_positions = track_dbn(track.beat_activation, track.downbeat_activation, fps=FPS)
    assert set(est_positions) == set(range(1, meter + 1))
    matched = mir_eval.util.match_events(beats, times, 0.07)
    assert len(matched) > 0.95 * len(beats)
    assert all(positions[i] == est_positions[j] for i, j in matched)


def test_without_downbeats_positions_are_unknown():
    beats, positions = constant_tempo_beats(140.0, 30.0, 0.1)
    track = make_track(beats, positions, 30.0, FPS, rng=4)
    times, est_positions = track_dbn(track.beat_activation, fps=FPS)
    assert mir_eval.beat.f_measure(beats, times) > 0.95
    assert np.all(est_positions == 0)


def test_corrected_beats_sit_on_activation_peaks():
    beats, positions = constant_tempo_beats(75.0, 30.0, 0.1)
    track = make_track(beats, positions, 30.0, FPS, rng=5)
    times, _ = track_dbn(track.beat_activation, track.downbeat_activation, fps=FPS)
    frames = np.round(times * FPS).astype(int)
    act = track.beat_activation
    assert np.all(act[frames] >= act[np.maximum(frames - 1, 0)])
    assert np.all(act[frames] >= act[np.minimum(frames + 1, len(act) - 1)])


def test_silence_gives_no_beats_and_is_trimmed():
    assert all(len(x) == 0 for x in track_dbn(np.zeros(500), np.zeros(500), fps=FPS))
    beats, positions = constant_tempo_beats(120.0, 40.0, 10.0)  # 10 s of silence first
    track = make_track(beats, positions, 40.0, FPS, rng=6)
    times, _ = track_dbn(track.beat_activation, track.downbeat_activation, fps=FPS)
    assert times.min() > 9.9
    assert mir_eval.beat.f_measure(beats, times) > 0.95


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beat_activation=np.zeros((100, 2))), "1-D"),
        (dict(beat_activation=np.full(100, np.nan)), "NaN"),
        (dict(downbeat_activation=np.zeros(99)), "frames"),
        (dict(bpm_min=200.0, bpm_max=100.0), "bpm_min"),
        (dict(fps=-1.0), "fps"),
        (dict(beats_per_bar=(0,)), "beats_per_bar"),
        (dict(observation_lambda=1.0), "observation_lambda"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(kwargs, message):
    args = dict(beat_activation=np.zeros(100), downbeat_activation=np.zeros(100)) | kwargs
    with pytest.raises(ValueError, match=message):
        track_dbn(**args)
