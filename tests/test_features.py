"""Log-mel (Beat This! formula), frame counts, frame targets and the per-shard feature jobs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from beatgrid.audio import load_audio
from beatgrid.data.store import list_track_ids, read_attrs, read_dropped, read_track_array, read_track_attrs, without_dropped
from beatgrid.features import (
    BEAT_THIS_MEL_CONFIG,
    MelConfig,
    audio_n_frames,
    compute_shard_mels,
    compute_shard_targets,
    frame_targets,
    log_mel,
    mel_filterbank,
    n_frames,
    resampled_length,
)

SR = 22050
HOP = 441


def _test_signal(seconds: float = 2.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A chirp, a few clicks and a little noise: energy in every mel band."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    chirp = 0.3 * np.sin(2 * np.pi * (40 * t + 0.5 * (10000 - 40) / seconds * t**2))
    clicks = np.zeros_like(t)
    clicks[(np.arange(0.25, seconds, 0.5) * sr).astype(int)] = 0.8
    return (chirp + clicks + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _beat_this_reference(audio: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """Beat This!'s LogMelSpect written out with torch.stft + librosa's filters:
    torchaudio.MelSpectrogram(mel_scale="slaney", norm=None, normalized="frame_length",
    power=1) calls torch.stft(normalized=True) with a periodic Hann window, centre
    padding by reflection, then applies the filters; Beat This! takes log1p(1000 x)."""
    torch = pytest.importorskip("torch")
    librosa = pytest.importorskip("librosa")
    spec = torch.stft(
        torch.from_numpy(audio.astype(np.float32)), n_fft=cfg.n_fft, hop_length=cfg.hop_length,
        window=torch.hann_window(cfg.n_fft), center=True, pad_mode="reflect",
        normalized=True, onesided=True, return_complex=True,
    ).abs().numpy()
    filters = librosa.filters.mel(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                  fmax=cfg.fmax, htk=False, norm=None)
    return np.log1p(1000.0 * (filters @ spec)).T


# --------------------------------------------------------------------------- MelConfig


def test_mel_config_defaults_are_beat_this_and_round_trip():
    cfg = MelConfig()
    assert cfg == BEAT_THIS_MEL_CONFIG
    assert cfg.fps == pytest.approx(50.0)
    assert MelConfig.from_dict({**cfg.as_dict(), "tracks_per_shard": 16}) == cfg
    attrs = {k: np.float64(v) if isinstance(v, float) else np.int64(v) for k, v in cfg.store_attrs().items()}
    assert MelConfig.from_dict(attrs) == cfg  # values as read back from HDF5
    assert MelConfig.from_dict({"sr": 44100, "hop_length": 882}).fps == pytest.approx(50.0)


@pytest.mark.parametrize("bad", [{"hop_length": 0}, {"n_mels": -1}, {"fmax": 12000.0}, {"fmin": 11000.0}])
def test_mel_config_rejects_impossible_values(bad):
    with pytest.raises(ValueError):
        MelConfig(**bad)


# --------------------------------------------------------------------------- log_mel


def test_log_mel_matches_beat_this_formula():
    cfg = MelConfig()
    audio = _test_signal()
    ours = log_mel(audio, cfg)
    reference = _beat_this_reference(audio, cfg)
    assert ours.dtype == np.float32
    assert ours.shape == reference.shape == (1 + audio.size // HOP, 128)
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-5)
    # the store keeps float16: the stored values still match to float16 precision
    np.testing.assert_allclose(ours.astype(np.float16).astype(np.float32), reference, rtol=2e-3, atol=2e-3)


def test_mel_filterbank_is_librosa_slaney_without_norm():
    librosa = pytest.importorskip("librosa")
    for cfg in (MelConfig(), MelConfig(sr=16000, hop_length=160, n_fft=512, n_mels=40, fmin=0.0, fmax=8000.0)):
        expected = librosa.filters.mel(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                       fmax=cfg.fmax, htk=False, norm=None)
        np.testing.assert_allclose(mel_filterbank(cfg), expected, atol=1e-6)


@pytest.mark.parametrize("n_samples", [513, 1000, HOP * 10, HOP * 10 - 1, HOP * 10 + 1, 22050])
def test_log_mel_frame_count(n_samples):
    audio = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32)
    assert log_mel(audio).shape == (n_frames(n_samples, HOP), 128)
    assert n_frames(n_samples, HOP) == 1 + n_samples // HOP


def test_log_mel_frames_are_centred():
    """A click at t seconds is loudest in frame round(t * fps)."""
    cfg = MelConfig()
    for click_frame in (0, 7, 30, 49):
        audio = np.zeros(SR, dtype=np.float32)
        audio[click_frame * HOP] = 1.0
        energy = log_mel(audio, cfg).sum(axis=1)
        assert int(np.argmax(energy)) == click_frame


def test_log_mel_rejects_bad_signals():
    with pytest.raises(ValueError, match="mono"):
        log_mel(np.zeros((2, 5000), dtype=np.float32))
    with pytest.raises(ValueError, match="too short"):
        log_mel(np.zeros(100, dtype=np.float32))


# --------------------------------------------------------------------------- frame counts


def test_resampled_length_matches_soxr():
    rng = np.random.default_rng(0)
    for sr_in in (8000, 16000, 32000, 44100, 48000, 96000, 22050):
        for n in rng.integers(1000, 200_000, 15):
            produced = len(soxr.resample(np.zeros(int(n), np.float32), sr_in, SR))
            exact = n * SR / sr_in
            if exact % 1 == 0.5:  # soxr rounds exact halves either way
                assert abs(resampled_length(n, sr_in, SR) - produced) <= 1
            else:
                assert resampled_length(n, sr_in, SR) == produced, (n, sr_in)


@pytest.mark.parametrize("native_sr,channels", [(44100, 2), (48000, 1), (22050, 1), (16000, 3)])
def test_header_frame_count_equals_decoded(tmp_path, native_sr, channels):
    """audio_n_frames (header only) equals the frames of load_audio's signal, any rate/channels."""
    rng = np.random.default_rng(native_sr)
    for n in (native_sr * 2 + 123, native_sr * 3 - 7):
        path = tmp_path / f"a_{native_sr}_{n}.wav"
        sf.write(path, 0.1 * rng.standard_normal((n, channels)), native_sr)
        decoded = load_audio(path, SR)
        assert decoded.size == resampled_length(n, native_sr, SR)  # no exact half-sample ties here
        assert n_frames(decoded.size, HOP) == audio_n_frames(path, SR, HOP)
        assert audio_n_frames(path, SR, HOP) == n_frames(resampled_length(n, native_sr, SR), HOP)


# --------------------------------------------------------------------------- frame_targets


def test_frame_targets_place_events_at_rounded_frames():
    fps = 50.0
    beats = np.array([0.0, 0.5, 1.012, 1.5099, 2.0])
    downbeats = np.array([0.0, 2.0])
    targets = frame_targets(beats, downbeats, n_frames=120, fps=fps, widen_frames=0)
    assert targets.shape == (120, 2) and targets.dtype == np.float32
    np.testing.assert_array_equal(np.flatnonzero(targets[:, 0]), [0, 25, 51, 75, 100])
    np.testing.assert_array_equal(np.flatnonzero(targets[:, 1]), [0, 100])
    assert set(np.unique(targets)) == {0.0, 1.0}


def test_frame_targets_widening_never_overwrites_an_event():
    targets = frame_targets(np.array([1.0, 1.02]), np.array([]), n_frames=100, fps=50.0,
                            widen_frames=2, widen_value=0.25)
    beat = targets[:, 0]
    assert beat[50] == beat[51] == 1.0  # adjacent beats: both stay 1
    np.testing.assert_array_equal(beat[[48, 49, 52, 53]], [0.25, 0.25, 0.25, 0.25])
    assert beat[47] == beat[54] == 0.0
    assert not targets[:, 1].any()


def test_frame_targets_drop_events_outside_the_track():
    targets = frame_targets(np.array([-0.5, 0.0, 1.98, 5.0]), np.array([1.0, 2.0]), n_frames=100,
                            fps=50.0, widen_frames=1, widen_value=0.5)
    beat, downbeat = targets[:, 0], targets[:, 1]
    np.testing.assert_array_equal(np.flatnonzero(beat == 1.0), [0, 99])
    np.testing.assert_array_equal(np.flatnonzero(beat == 0.5), [1, 98])
    # a downbeat on frame 100 (one past the end) is dropped; its widening still marks frame 99
    np.testing.assert_array_equal(np.flatnonzero(downbeat == 1.0), [50])
    assert downbeat[99] == 0.5
    assert frame_targets(np.array([1.0]), np.array([]), 0, 50.0).shape == (0, 2)


# --------------------------------------------------------------------------- shard jobs


def _write_track(folder, name, seconds, native_sr, channels, beats, positions=None):
    rng = np.random.default_rng(len(name))
    audio_path = folder / f"{name}.wav"
    sf.write(audio_path, 0.1 * rng.standard_normal((int(seconds * native_sr), channels)), native_sr)
    beats_path = folder / f"{name}.beats"
    lines = [f"{t:.6f}" + ("" if positions is None else f"\t{p}") for t, p in
             zip(beats, positions if positions is not None else beats)]
    beats_path.write_text("\n".join(lines) + "\n")
    return audio_path, beats_path


def _tracks_table(rows):
    columns = ["track_id", "dataset", "audio_path", "annotation_path", "annotation_format",
               "has_downbeats", "duration_s", "split", "shard"]
    return pd.DataFrame([{"dataset": "t", "split": "train", "shard": "000", "duration_s": 0.0, **r}
                         for r in rows], columns=columns)


def test_shard_jobs_write_aligned_mels_and_targets(tmp_path):
    beats = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    a_audio, a_beats = _write_track(tmp_path, "a", 3.01, 44100, 2, beats, [1, 2, 3, 1, 2])
    b_audio, b_beats = _write_track(tmp_path, "b", 2.5, 48000, 1, beats[:4])  # no positions
    label = tmp_path / "c.labels.json"
    label.write_text(json.dumps({"bpm": 120.0, "downbeatOffset": 0.25, "duration": 2.0}))
    c_audio, _ = _write_track(tmp_path, "c", 2.0, 22050, 1, beats[:1])
    d_audio, _ = _write_track(tmp_path, "d", 3.0, 22050, 1, beats[:1])
    jams = tmp_path / "d.jams"  # the beats and bars of track a, as a JAMS file
    jams.write_text(json.dumps({"annotations": [{"namespace": "beat", "data": [
        {"time": t, "duration": 0.0, "value": p} for t, p in zip(beats.tolist(), [1, 2, 3, 1, 2])]}]}))
    tracks = _tracks_table([
        {"track_id": "a", "audio_path": str(a_audio), "annotation_path": str(a_beats),
         "annotation_format": "beats", "has_downbeats": True},
        {"track_id": "b", "audio_path": str(b_audio), "annotation_path": str(b_beats),
         "annotation_format": "beats", "has_downbeats": False},
        {"track_id": "c", "audio_path": str(c_audio), "annotation_path": str(label),
         "annotation_format": "label_json", "has_downbeats": True},
        {"track_id": "d", "audio_path": str(d_audio), "annotation_path": str(jams),
         "annotation_format": "jams", "has_downbeats": True},
    ])
    mels, targets = tmp_path / "mels" / "000.h5", tmp_path / "targets" / "000.h5"
    compute_shard_mels(tracks, mels, MelConfig(), progress=False)
    compute_shard_targets(tracks, targets, sr=SR, hop_length=HOP, widen_frames=1, widen_value=0.5,
                          progress=False)

    assert read_attrs(mels) == pytest.approx(MelConfig().store_attrs())
    assert read_attrs(targets)["fps"] == pytest.approx(50.0)
    assert list_track_ids(mels) == list_track_ids(targets) == ["a", "b", "c", "d"]
    for row in tracks.itertuples():
        mel = read_track_array(mels, row.track_id, "mel")
        beat = read_track_array(targets, row.track_id, "beat")
        assert mel.dtype == np.float16 and mel.shape[1] == 128
        assert mel.shape[0] == beat.shape[0] == audio_n_frames(row.audio_path, SR, HOP)
        expected = log_mel(load_audio(row.audio_path, SR))
        np.testing.assert_allclose(mel.astype(np.float32), expected[: mel.shape[0]], rtol=2e-3, atol=2e-3)

    beat_a = read_track_array(targets, "a", "beat")
    np.testing.assert_array_equal(np.flatnonzero(beat_a == 1.0), np.round(beats * 50).astype(int))
    np.testing.assert_array_equal(np.flatnonzero(read_track_array(targets, "a", "downbeat") == 1.0), [25, 100])
    np.testing.assert_allclose(read_track_array(targets, "a", "beat_times"), beats)
    assert read_track_attrs(targets, "a")["has_downbeats"] is True
    # no downbeat annotation: zero target, flagged for masking
    assert not read_track_array(targets, "b", "downbeat").any()
    assert read_track_attrs(targets, "b")["has_downbeats"] is False
    # label JSON: 120 BPM grid through 0.25 s over the 2 s of audio
    np.testing.assert_allclose(read_track_array(targets, "c", "beat_times"), [0.25, 0.75, 1.25, 1.75])
    np.testing.assert_allclose(read_track_array(targets, "c", "downbeat_times"), [0.25])
    # JAMS: the same targets as the .beats file of track a
    for name in ("beat", "downbeat"):
        np.testing.assert_array_equal(read_track_array(targets, "d", name)[:150],
                                      read_track_array(targets, "a", name)[:150])


def test_empty_shard_gives_valid_empty_stores(tmp_path):
    compute_shard_mels(_tracks_table([]), tmp_path / "m.h5", progress=False)
    compute_shard_targets(pd.DataFrame(), tmp_path / "t.h5", progress=False)  # as from "[]" JSON
    assert list_track_ids(tmp_path / "m.h5") == list_track_ids(tmp_path / "t.h5") == []
    assert read_attrs(tmp_path / "m.h5")["n_mels"] == 128


def test_a_track_that_fails_is_dropped_from_its_shard_with_the_reason_recorded(tmp_path, caplog):
    """A bad file never stops the others: the shard is written without it, and says why."""
    good_audio, good_beats = _write_track(tmp_path, "good", 1.0, 22050, 1, [0.5])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    tracks = _tracks_table([
        {"track_id": "good", "audio_path": str(good_audio), "annotation_path": str(good_beats),
         "annotation_format": "beats", "has_downbeats": False},
        {"track_id": "broken_track", "audio_path": str(broken), "annotation_path": str(good_beats),
         "annotation_format": "beats", "has_downbeats": False},
    ])
    for compute, out in ((compute_shard_mels, tmp_path / "mels.h5"), (compute_shard_targets, tmp_path / "targets.h5")):
        compute(tracks, out, progress=False)
        assert list_track_ids(out) == ["good"]
        dropped = read_dropped(out)
        assert list(dropped) == ["broken_track"] and str(broken) in dropped["broken_track"]
        assert without_dropped(["good", "broken_track"], out) == ["good"]
    assert "dropping track 'broken_track'" in caplog.text


def test_shard_jobs_reject_bad_tables(tmp_path):
    with pytest.raises(ValueError, match="audio_path"):
        compute_shard_mels(pd.DataFrame({"track_id": ["a"]}), tmp_path / "m.h5", progress=False)
    audio, beats = _write_track(tmp_path, "a", 1.0, 22050, 1, [0.5])
    row = {"track_id": "a", "audio_path": str(audio), "annotation_path": str(beats),
           "annotation_format": "beats", "has_downbeats": False}
    with pytest.raises(ValueError, match="duplicate"):
        compute_shard_mels(_tracks_table([row, row]), tmp_path / "m.h5", progress=False)
    assert not (tmp_path / "m.h5").exists()


def test_mels_follow_the_header_frame_count(tmp_path, monkeypatch):
    """A decoder that returns a sample less (soxr's half-sample rounding) still gives the
    header's T, so targets line up; a decoder that loses frames is an error."""
    import beatgrid.audio

    n = HOP * 40  # exactly 41 frames; one sample less gives 40
    audio_path, beats_path = _write_track(tmp_path, "x", n / SR, SR, 1, [0.5])
    row = {"track_id": "x", "audio_path": str(audio_path), "annotation_path": str(beats_path),
           "annotation_format": "beats", "has_downbeats": False}
    real_load = beatgrid.audio.load_audio
    monkeypatch.setattr(beatgrid.audio, "load_audio", lambda path, sr: real_load(path, sr)[:-1])
    compute_shard_mels(_tracks_table([row]), tmp_path / "m.h5", progress=False)
    assert read_track_array(tmp_path / "m.h5", "x", "mel").shape == (41, 128)

    monkeypatch.setattr(beatgrid.audio, "load_audio", lambda path, sr: real_load(path, sr)[: -3 * HOP])
    compute_shard_mels(_tracks_table([row]), tmp_path / "m2.h5", progress=False)
    assert list_track_ids(tmp_path / "m2.h5") == []
    assert "header promises 41" in read_dropped(tmp_path / "m2.h5")["x"]
