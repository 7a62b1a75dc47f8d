"""Tests for beatgrid.decoding.dbn: bar-pointer HMM decoding of beats and downbeats."""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest
from beatgrid.decoding.dbn import (
    DBNSettings,
    ForwardFilter,
    beat_intervals,
    fixed_lag_viterbi,
    tempo_transitions,
    track_dbn,
)
from tests.synthetic_activations import constant_tempo_beats, make_track, ramp_beats, tempo_change_beats

FPS = 50.0


def dense_model(beat, down, fps, bpm_min, bpm_max, meter, transition_lambda, observation_lambda):
    """The explicit (beat, interval, position) states of one meter, built from the model's definition.

    Independent of beatgrid.decoding.dbn. Returns (states, [S, S] log transition matrix,
    [T, S] log observation densities, [S] kind: 0 non-beat, 1 beat, 2 downbeat state).
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
    return states, log_a, densities[:, kind], kind


def dense_viterbi(beat, down, fps, bpm_min, bpm_max, meter, transition_lambda, observation_lambda):
    """Textbook frame-level Viterbi over the explicit states of :func:`dense_model`.

    Returns (log-probability, beat frames, positions).
    """
    states, log_a, obs, _ = dense_model(beat, down, fps, bpm_min, bpm_max, meter, transition_lambda,
                                        observation_lambda)
    n_states = len(states)
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


def _noisy_pulse(seed, n_frames, fps):
    """A noisy pulse with irregular intervals (3-5 frames at 10 fps) and some downbeat evidence."""
    rng = np.random.default_rng(seed)
    onsets = 2 + np.cumsum(rng.integers(3, 6, size=n_frames))
    onsets = onsets[onsets < n_frames - 2]
    beat = 0.3 * rng.random(n_frames)
    beat[onsets] = rng.uniform(0.5, 1.0, size=len(onsets))
    down = 0.1 * rng.random(n_frames)
    down[onsets[::3]] = 0.8 * beat[onsets[::3]]
    return beat, down


@pytest.mark.parametrize("seed", range(2))
def test_forward_filter_equals_the_textbook_forward_algorithm(seed):
    """p(beat under way | frames 0..t) and the beat in the bar holding it, from explicit
    matrices over both meters (prior 1/2 per meter, uniform within it)."""
    fps, bpm_min, bpm_max, n_frames = 10.0, 100.0, 200.0, 60
    beat, down = _noisy_pulse(seed, n_frames, fps)
    blocks = [dense_model(beat, down, fps, bpm_min, bpm_max, m, 20.0, 16.0) for m in (3, 4)]
    sizes = [len(block[0]) for block in blocks]
    trans = np.zeros((sum(sizes), sum(sizes)))
    trans[: sizes[0], : sizes[0]] = np.exp(blocks[0][1])
    trans[sizes[0]:, sizes[0]:] = np.exp(blocks[1][1])
    obs = np.exp(np.concatenate([block[2] for block in blocks], axis=1))
    is_beat = np.concatenate([block[3] for block in blocks]) > 0
    row = np.array([b + (0 if n < sizes[0] else 3) for n, (b, _, _) in enumerate(blocks[0][0] + blocks[1][0])])
    alpha = np.concatenate([np.full(size, 0.5 / size) for size in sizes])
    fwd = ForwardFilter(fps, DBNSettings(bpm_min, bpm_max, (3, 4), transition_lambda=20.0))
    assert list(fwd.row_meter) == [3, 3, 3, 4, 4, 4, 4] and list(fwd.row_beat) == [0, 1, 2, 0, 1, 2, 3]
    for t in range(n_frames):
        alpha = (alpha @ trans) * obs[t]
        alpha /= alpha.sum()
        beat_probability, best_row = fwd.step(beat[t], down[t])
        assert beat_probability == pytest.approx(alpha[is_beat].sum(), rel=1e-9)
        assert best_row == np.argmax(np.bincount(row[is_beat], weights=alpha[is_beat], minlength=7))


def test_forward_filter_stepping_equals_the_compiled_pass_and_never_looks_ahead():
    beat, down = _noisy_pulse(3, 400, FPS)
    whole = ForwardFilter(FPS).process(beat, down)
    stepper = ForwardFilter(FPS)
    stepped = np.array([stepper.step(b, d) for b, d in zip(beat, down)])
    np.testing.assert_array_equal(stepped[:, 0], whole[0])  # bit for bit
    np.testing.assert_array_equal(stepped[:, 1], whole[1])
    for end in (1, 57, 250):  # the output for frame t never depends on frames after t
        truncated = ForwardFilter(FPS).process(beat[:end], down[:end])
        np.testing.assert_array_equal(truncated[0], whole[0][:end])
        np.testing.assert_array_equal(truncated[1], whole[1][:end])
    resumed = ForwardFilter(FPS)
    resumed.process(beat[:100], down[:100])
    np.testing.assert_array_equal(resumed.process(beat[100:], down[100:])[0], whole[0][100:])
    resumed.reset()
    np.testing.assert_array_equal(resumed.process(beat, down)[0], whole[0])


def test_forward_filter_without_downbeats_models_one_beat_bars():
    beat, _ = _noisy_pulse(4, 200, FPS)
    fwd = ForwardFilter(FPS, downbeats=False)
    assert list(fwd.row_meter) == [1]
    beat_probability, rows = fwd.process(beat)
    assert np.all(rows == 0) and np.all((beat_probability >= 0) & (beat_probability <= 1))
    with pytest.raises(ValueError, match="downbeat probability"):
        ForwardFilter(FPS).step(0.5)
    with pytest.raises(ValueError, match="beat probability contains NaN"):
        ForwardFilter(FPS).step(float("nan"), 0.0)
    with pytest.raises(ValueError, match="bpm_min"):
        ForwardFilter(FPS, DBNSettings(bpm_min=200.0, bpm_max=100.0))


@pytest.mark.parametrize("transition_lambda", [100.0, 5.0])
@pytest.mark.parametrize("seed", range(3))
def test_fixed_lag_viterbi_with_the_whole_track_as_lag_is_the_offline_path(seed, transition_lambda):
    beat, down = _noisy_pulse(seed, 120, 10.0)
    settings = DBNSettings(100.0, 200.0, (3, 4), transition_lambda=transition_lambda)
    offline = track_dbn(beat, down, fps=10.0, bpm_min=100.0, bpm_max=200.0, beats_per_bar=(3, 4),
                        transition_lambda=transition_lambda, correct=False, threshold=0.0)
    lagged = fixed_lag_viterbi(beat, down, 10.0, lag_frames=len(beat), settings=settings, threshold=0.0)
    np.testing.assert_array_equal(lagged[0], offline[0])
    np.testing.assert_array_equal(lagged[1], offline[1])


@pytest.mark.parametrize("lag_frames", [0, 7])
def test_fixed_lag_viterbi_decides_each_frame_from_frames_up_to_its_lag(lag_frames):
    beat, down = _noisy_pulse(5, 300, 10.0)
    settings = DBNSettings(100.0, 200.0, (3, 4), transition_lambda=5.0)
    whole = fixed_lag_viterbi(beat, down, 10.0, lag_frames, settings, threshold=0.0)
    for end in (40, 151):  # frames decided before the stream ends, from beat[:end], are final
        truncated = fixed_lag_viterbi(beat[:end], down[:end], 10.0, lag_frames, settings, threshold=0.0)
        final = (end - 1 - lag_frames) / 10.0
        np.testing.assert_array_equal(truncated[0][truncated[0] < final], whole[0][whole[0] < final])
        np.testing.assert_array_equal(truncated[1][truncated[0] < final], whole[1][whole[0] < final])
    # a longer lag sees more: it is not the lag-0 decoding
    assert not np.array_equal(whole[0], fixed_lag_viterbi(beat, down, 10.0, 0 if lag_frames else 7, settings,
                                                          threshold=0.0)[0])


def test_fixed_lag_viterbi_tracks_a_clean_pulse_and_its_bars_without_delay():
    beats, positions = constant_tempo_beats(93.27, 30.0, 0.2, 4, first_position=2)
    track = make_track(beats, positions, 30.0, FPS, rng=3, noise=0.03)
    times, est_positions = fixed_lag_viterbi(track.beat_activation, track.downbeat_activation, FPS, lag_frames=0)
    assert mir_eval.beat.f_measure(mir_eval.beat.trim_beats(beats), mir_eval.beat.trim_beats(times)) > 0.95
    matched = mir_eval.util.match_events(beats, times, 0.07)
    settled = matched[len(matched) // 2:]  # the bar is known once a few bars have been heard
    assert all(positions[i] == est_positions[j] for i, j in settled)
    no_downbeats = fixed_lag_viterbi(track.beat_activation, None, FPS, lag_frames=0)
    assert set(no_downbeats[1]) == {0}
    with pytest.raises(ValueError, match="lag_frames"):
        fixed_lag_viterbi(track.beat_activation, None, FPS, lag_frames=-1)
