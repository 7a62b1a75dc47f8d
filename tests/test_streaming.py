"""Online beat tracking: causal peak picking, bar positions, stream == whole-sequence pass."""

import mir_eval
import numpy as np
import pytest
import torch

from beatgrid.data.activation_augment import simulate_activations
from beatgrid.features import MelConfig, log_mel
from beatgrid.models.crnn import CRNN
from beatgrid.models.ltm import GRUTemporalModel, TemporalConvNet
from beatgrid.decoding.streaming import (
    CausalDBN,
    CausalPeakPicker,
    OnlineBeatTracker,
    OnlineCRNNTracker,
    OnlineLogMel,
    causal_dbn,
    causal_peak_picking,
    default_refractory_s,
    ltm_probabilities,
    track_online,
)

from tests.synthetic_activations import constant_tempo_beats, make_track, tempo_change_beats

torch.set_num_threads(1)
FPS = 50.0


def _peaks(frames, n_frames=200, height=0.9, downbeats=()):
    """Triangular peaks (width 2 frames) at the given frames; downbeat column at `downbeats`."""
    act = np.zeros((n_frames, 2))
    for col, where in ((0, frames), (1, downbeats)):
        for f in where:
            act[f, col] = height
            act[f - 1, col] = act[f + 1, col] = height / 2
    return act


def _reference_beats(probabilities, fps, threshold, refractory_s):
    """The causal rule written offline: local maxima above threshold, then greedy refractory."""
    beat = probabilities[:, 0]
    before = np.concatenate([[0.0], beat[:-1]])
    after = np.concatenate([beat[1:], [np.inf]])  # the last frame is never confirmed
    candidates = np.flatnonzero((beat >= threshold) & (beat >= before) & (beat > after))
    kept = []
    for frame in candidates:
        if not kept or (frame - kept[-1]) / fps >= refractory_s:
            kept.append(frame)
    return np.array(kept, dtype=int)


def _synthetic_activations(seed=0, n_frames=1500, bpm=123.0):
    rng = np.random.default_rng(seed)
    beats = np.arange(0.3, n_frames / FPS, 60.0 / bpm)
    return simulate_activations(beats, beats[::4], n_frames, FPS, rng)


def test_decision_is_one_frame_late():
    picker = CausalPeakPicker(FPS, threshold=0.5)
    act = _peaks([10, 40])
    decided = {}
    for i, frame in enumerate(act):
        event = picker.process_frame(frame)
        if event is not None:
            decided[event.frame] = i
    assert decided == {10: 11, 40: 41}
    assert picker.process_frame(np.zeros(2)) is None


@pytest.mark.parametrize("model_kind", [None, "tcn", "gru"])
def test_stream_equals_offline_rule(model_kind):
    """Beats emitted frame by frame equal the causal rule applied to the whole-sequence pass."""
    torch.manual_seed(1)
    model = {None: None, "tcn": TemporalConvNet(channels=8), "gru": GRUTemporalModel(hidden=8)}[model_kind]
    act = _synthetic_activations()
    probabilities = act if model is None else ltm_probabilities(model, act)
    # An untrained model's output has arbitrary scale: set the threshold where it has peaks.
    threshold = 0.5 if model is None else float(np.quantile(probabilities[:, 0], 0.9))
    tracker = OnlineBeatTracker(model, FPS, threshold=threshold, refractory_s=0.25)
    events = tracker.process(act)
    expected = _reference_beats(probabilities, FPS, threshold, 0.25)
    assert len(expected) > 20
    np.testing.assert_array_equal([e.frame for e in events], expected)
    np.testing.assert_allclose([e.time_s for e in events], expected / FPS)
    np.testing.assert_allclose([e.strength for e in events], probabilities[expected, 0], atol=1e-5)
    times, positions = track_online(model, act, FPS, threshold=threshold, refractory_s=0.25)
    np.testing.assert_array_equal(times, [e.time_s for e in events])
    np.testing.assert_array_equal(positions, [e.bar_position for e in events])


def test_reset_restarts_the_stream():
    tracker = OnlineBeatTracker(TemporalConvNet(channels=8), FPS, threshold=0.0, refractory_s=0.3)
    act = _synthetic_activations(n_frames=300)
    first = tracker.process(act)
    tracker.reset()
    assert tracker.process(act) == first


def test_threshold_and_refractory():
    act = _peaks([20, 30, 60], n_frames=100)
    act[59:62, 0] *= 0.4 / 0.9  # a peak of height 0.4, below the threshold
    times, _ = causal_peak_picking(act, FPS, threshold=0.5, refractory_s=0.3)
    np.testing.assert_allclose(times, [20 / FPS])  # 30 is 0.2 s after 20
    times, _ = causal_peak_picking(act, FPS, threshold=0.3, refractory_s=0.1)
    np.testing.assert_allclose(times, np.array([20, 30, 60]) / FPS)


def test_plateau_gives_one_beat():
    act = np.zeros((30, 2))
    act[10:14, 0] = 0.8
    times, _ = causal_peak_picking(act, FPS, refractory_s=0.0)
    assert len(times) == 1 and 10 / FPS <= times[0] <= 13 / FPS


def test_default_refractory_follows_bpm_max():
    assert default_refractory_s(200.0) == pytest.approx(0.7 * 0.3)
    # 190 BPM beats pass with bpm_max=200 but not with bpm_max=120.
    frames = np.round(np.arange(10, 490, 50 * 60 / 190)).astype(int)
    act = _peaks(frames, n_frames=500)
    assert len(causal_peak_picking(act, FPS, bpm_max=200.0)[0]) == len(frames)
    assert len(causal_peak_picking(act, FPS, bpm_max=120.0)[0]) < len(frames)
    with pytest.raises(ValueError, match="bpm_max"):
        default_refractory_s(0.0)


def test_bar_positions_count_and_wrap():
    beats = list(range(10, 400, 25))  # 16 beats
    # Downbeat evidence at beats 2 and 6 only (a 4/4 bar), then nothing: counting must wrap.
    act = _peaks(beats, n_frames=420, downbeats=[beats[2], beats[6]])
    _, positions = causal_peak_picking(act, FPS, beats_per_bar=4)
    np.testing.assert_array_equal(positions, [0, 0, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2])
    events = OnlineBeatTracker(None, FPS, beats_per_bar=4).process(act)
    assert [e.is_downbeat for e in events] == [p == 1 for p in positions]


def test_beats_per_bar_is_inferred_from_downbeats():
    beats = list(range(10, 600, 25))  # 24 beats
    downbeats = beats[0:9:3]  # three bars of 3/4 with downbeat evidence, then none
    act = _peaks(beats, n_frames=620, downbeats=downbeats)
    _, positions = causal_peak_picking(act, FPS, beats_per_bar=None)
    assert list(positions[:12]) == [1, 2, 3] * 4
    assert set(np.flatnonzero(positions == 1)) == set(range(0, 24, 3))
    _, fixed = causal_peak_picking(act, FPS, beats_per_bar=4)  # forced 4: counts to 4
    assert list(fixed[6:11]) == [1, 2, 3, 4, 1]


def test_downbeat_evidence_one_frame_off_counts():
    act = _peaks([20, 45, 70], n_frames=100)
    act[46, 1] = 0.9  # downbeat peak one frame after the beat peak
    _, positions = causal_peak_picking(act, FPS)
    np.testing.assert_array_equal(positions, [0, 1, 2])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match=r"\[T, 2\]"):
        causal_peak_picking(np.zeros((10, 3)), FPS)
    with pytest.raises(ValueError, match="fps"):
        CausalPeakPicker(0.0)
    with pytest.raises(ValueError, match="shape"):
        OnlineBeatTracker(None, FPS).process_frame(np.zeros(3))


def _click_track(seconds: float, bpm: float, sr: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = rng.normal(0.0, 0.01, int(seconds * sr)).astype(np.float32)
    for onset in np.arange(0.1, seconds, 60.0 / bpm):
        start = int(onset * sr)
        audio[start : start + 200] += np.hanning(200).astype(np.float32) * rng.choice([0.5, 1.0])
    return audio


def _blocks(audio: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    start = 0
    while start < len(audio):
        size = int(rng.integers(1, 2000))
        yield audio[start : start + size]
        start += size


def test_online_log_mel_equals_offline():
    cfg = MelConfig()
    audio = _click_track(3.0, 120.0, cfg.sr)[: 3 * cfg.sr - 7]
    stream = OnlineLogMel(cfg)
    frames = np.concatenate([stream.push(block) for block in _blocks(audio, 0)] + [stream.flush()])
    expected = log_mel(audio, cfg)
    assert frames.shape == expected.shape
    np.testing.assert_allclose(frames, expected, atol=1e-4, rtol=0)


def test_online_log_mel_look_ahead_is_half_a_window():
    """Frame i is out as soon as sample i*hop + n_fft/2 - 1 is in, not one sample earlier."""
    cfg = MelConfig()
    audio = _click_track(1.0, 120.0, cfg.sr)
    half = cfg.n_fft // 2
    for i in (1, 5):
        needed = i * cfg.hop_length + half
        stream = OnlineLogMel(cfg)
        assert len(stream.push(audio[: needed - 1])) == i
        assert len(stream.push(audio[needed - 1 : needed])) == 1
    with pytest.raises(ValueError, match="too short"):
        short = OnlineLogMel(cfg)
        short.push(audio[:half])
        short.flush()


def test_online_crnn_tracker_equals_offline_chain():
    cfg = MelConfig()
    torch.manual_seed(0)
    crnn = CRNN(n_mels=cfg.n_mels, conv_channels=(4, 8), rnn_hidden=8, rnn_layers=1, causal=True).eval()
    ltm = TemporalConvNet(channels=8, n_layers=4).eval()
    audio = _click_track(6.0, 128.0, cfg.sr)
    with torch.no_grad():
        crnn_probabilities = torch.sigmoid(crnn(torch.from_numpy(log_mel(audio, cfg))[None]))[0].numpy()
    ltm_out = ltm_probabilities(ltm, crnn_probabilities)
    threshold = float(np.quantile(ltm_out[:, 0], 0.9))
    expected_times, expected_positions = track_online(ltm, crnn_probabilities, cfg.fps, threshold=threshold)
    assert len(expected_times) > 5
    tracker = OnlineCRNNTracker(crnn, ltm, cfg, threshold=threshold)
    events = [event for block in _blocks(audio, 1) for event in tracker.process_block(block)]
    events += tracker.flush()
    np.testing.assert_allclose([e.time_s for e in events], expected_times)
    np.testing.assert_array_equal([e.bar_position for e in events], expected_positions)
    with pytest.raises(ValueError, match="causal"):
        OnlineCRNNTracker(CRNN(n_mels=cfg.n_mels, conv_channels=(4,), causal=False), ltm, cfg)


def test_online_crnn_tracker_with_the_dbn_rule_equals_offline_chain():
    cfg = MelConfig()
    torch.manual_seed(0)
    crnn = CRNN(n_mels=cfg.n_mels, conv_channels=(4, 8), rnn_hidden=8, rnn_layers=1, causal=True).eval()
    audio = _click_track(6.0, 128.0, cfg.sr)
    with torch.no_grad():
        crnn_probabilities = torch.sigmoid(crnn(torch.from_numpy(log_mel(audio, cfg))[None]))[0].numpy()
    options = dict(rule="dbn", pos_weight=(1.0, 1.0), threshold=0.0)
    expected_times, expected_positions = track_online(None, crnn_probabilities, cfg.fps, **options)
    tracker = OnlineCRNNTracker(crnn, None, cfg, **options)
    events = [event for block in _blocks(audio, 2) for event in tracker.process_block(block)]
    events += tracker.flush()
    assert events  # an untrained CRNN: few beats, but the same ones
    np.testing.assert_allclose([e.time_s for e in events], expected_times)
    np.testing.assert_array_equal([e.bar_position for e in events], expected_positions)


def test_counting_follows_a_change_of_metre():
    """Bars of 4, then bars of 3 by downbeat evidence, then none: counting goes on in 3."""
    beats = list(range(10, 1000, 25))  # 40 beats
    evidence = [0, 4, 8, 11, 14, 17, 20, 23]  # 4/4 twice, then 3/4 (bar lengths 4, 4, 3, 3, 3, 3, 3)
    act = _peaks(beats, n_frames=1010, downbeats=[beats[i] for i in evidence])
    _, positions = causal_peak_picking(act, FPS)
    assert list(positions[:8]) == [1, 2, 3, 4] * 2
    assert set(np.flatnonzero(positions == 1)) == set(evidence) | set(range(26, 40, 3))
    assert positions.max() == 4 and set(positions[23:]) == {1, 2, 3}


def _track_activations(beats, positions, duration_s, seed, **kwargs):
    track = make_track(beats, positions, duration_s, FPS, rng=seed, **kwargs)
    return track, np.stack([track.beat_activation, track.downbeat_activation], axis=1)


@pytest.mark.parametrize("meter", [3, 4])
def test_causal_dbn_tracks_a_constant_tempo_and_its_bars(meter):
    beats, positions = constant_tempo_beats(117.0, 30.0, 0.4, meter, first_position=2)
    track, act = _track_activations(beats, positions, 30.0, seed=meter, noise=0.05, missing=0.1, extra=0.05)
    times, est_positions = causal_dbn(act, FPS)
    assert mir_eval.beat.f_measure(beats, times) > 0.95
    assert mir_eval.beat.f_measure(track.downbeat_times, times[est_positions == 1]) > 0.9
    assert set(est_positions) == set(range(1, meter + 1))


def test_causal_dbn_follows_a_tempo_change():
    beats, positions = tempo_change_beats(100.0, 130.0, 20.0, 40.0)
    _, act = _track_activations(beats, positions, 40.0, seed=7, noise=0.05)
    times, _ = causal_dbn(act, FPS)
    assert mir_eval.beat.f_measure(beats, times) > 0.9
    after = beats[beats > 24.0]  # a few beats after the change to re-lock
    assert mir_eval.beat.f_measure(after, times[times > 24.0]) > 0.95


def test_causal_dbn_stream_equals_whole_array_and_never_looks_ahead():
    beats, positions = tempo_change_beats(90.0, 140.0, 10.0, 25.0)
    _, act = _track_activations(beats, positions, 25.0, seed=8, noise=0.1, missing=0.1, extra=0.1)
    act[:60] = 0.0  # a silent start: the filter starts at the first loud frame
    times, positions = causal_dbn(act, FPS)
    assert len(times) > 30 and times[0] > 60 / FPS
    rule = CausalDBN(FPS)
    decided_at = {}  # beat frame -> the frame whose arrival decided it
    events = []
    for t, frame in enumerate(act):
        event = rule.process_frame(frame)
        if event is not None:
            decided_at[event.frame] = t
            events.append(event)
    np.testing.assert_array_equal([e.time_s for e in events], times)
    np.testing.assert_array_equal([e.bar_position for e in events], positions)
    assert all(t - frame == 1 for frame, t in decided_at.items())  # one frame of decision delay
    for end in (70, 333, 700, len(act) - 1):  # input cut after frame `end`: the same beats up to there
        cut_times, cut_positions = causal_dbn(act[: end + 1], FPS)
        decided = [frame for frame, t in decided_at.items() if t <= end]
        np.testing.assert_array_equal(np.round(cut_times * FPS).astype(int), decided)
        np.testing.assert_array_equal(cut_positions, positions[: len(decided)])
    chunked = CausalDBN(FPS)
    in_chunks = [e for chunk in np.array_split(act, 7) for e in chunked.process(chunk)]
    assert in_chunks == events


@pytest.mark.parametrize("model_kind", [None, "tcn"])
def test_online_tracker_with_the_dbn_rule_equals_track_online(model_kind):
    """The streaming tracker (LTM stepped per frame, calibrated, filtered) equals the offline chain."""
    torch.manual_seed(2)
    model = {None: None, "tcn": TemporalConvNet(channels=8)}[model_kind]
    act = _synthetic_activations(seed=3)
    pos_weight = (4.0, 9.0)
    tracker = OnlineBeatTracker(model, FPS, rule="dbn", pos_weight=pos_weight, bpm_max=180.0)
    events = tracker.process(act)
    times, positions = track_online(model, act, FPS, rule="dbn", pos_weight=pos_weight, bpm_max=180.0)
    if model is None:
        assert len(times) > 20
    np.testing.assert_allclose([e.time_s for e in events], times)
    np.testing.assert_array_equal([e.bar_position for e in events], positions)


def test_causal_dbn_without_downbeats_gives_unknown_positions_and_rejects_unknown_rules():
    beats, positions = constant_tempo_beats(140.0, 20.0, 0.1)
    _, act = _track_activations(beats, positions, 20.0, seed=9)
    act[:, 1] = 0.0
    times, est_positions = causal_dbn(act, FPS, downbeats=False)
    assert mir_eval.beat.f_measure(beats, times) > 0.95
    assert np.all(est_positions == 0)
    assert causal_dbn(np.zeros((300, 2)), FPS)[0].size == 0  # silence: the filter never starts
    with pytest.raises(ValueError, match="unknown decision rule 'magic'; known: peaks, dbn"):
        OnlineBeatTracker(None, FPS, rule="magic")
