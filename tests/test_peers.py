"""Tests for beatgrid.peers: librosa's beat tracker as the peer, on synthetic click tracks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from beatgrid import evaluation as ev
from beatgrid import peers
from beatgrid.predictions import read_prediction_beats

sf = pytest.importorskip("soundfile")
SR = 22050


def _click_track(path, bpm: float, duration_s: float = 16.0, offset_s: float = 0.3) -> np.ndarray:
    """Write a click track (accented every 4th beat) and return its beat times in seconds."""
    beats = np.arange(offset_s, duration_s - 0.1, 60.0 / bpm)
    audio = np.zeros(int(duration_s * SR), dtype=np.float32)
    n = int(0.03 * SR)
    t = np.arange(n) / SR
    for i, beat in enumerate(beats):
        freq, gain = (1500.0, 0.9) if i % 4 == 0 else (1000.0, 0.5)
        start = int(round(beat * SR))
        audio[start : start + n] += gain * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.006)
    sf.write(path, audio, SR, subtype="PCM_16")
    return beats


@pytest.mark.parametrize("bpm", [97.0, 143.0])  # away from librosa's 120 BPM prior
def test_librosa_beats_finds_the_tempo_and_beats(tmp_path, bpm):
    path = tmp_path / "clicks.wav"
    truth = _click_track(path, bpm)
    beat_times, est_bpm = peers.librosa_beats(path, sr=SR)
    assert abs(est_bpm - bpm) <= 0.04 * bpm
    scores = ev.evaluate_track(truth, None, beat_times, None, trim_seconds=2.0)
    assert scores["beat_f"] > 0.9


def test_write_peer_predictions_round_trip(tmp_path):
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    rows, refs = [], {}
    for i, bpm in enumerate((97.0, 143.0)):
        path = audio_dir / f"clicks_{i}.wav"
        truth = _click_track(path, bpm, duration_s=12.0)
        rows.append({"track_id": f"t{i}", "dataset": "synth", "split": "test", "audio_path": str(path),
                     "duration_s": 12.0, "has_downbeats": True})  # fmt: skip
        refs[f"t{i}"] = ev.Reference(truth, truth[::4])
    tracks = pd.DataFrame(rows)
    out = tmp_path / "predictions" / "librosa"
    written = peers.write_peer_predictions(tracks, out, sr=SR)
    assert sorted(p.name for p in written) == ["t0.beats", "t0.json", "t1.beats", "t1.json"]

    times, positions = read_prediction_beats(out / "t0.beats")
    assert positions is None and times.size > 10  # beats only: no downbeat estimate
    grid = json.loads((out / "t1.json").read_text())
    assert grid["fileName"] == "clicks_1.wav" and abs(grid["bpm"] - 143.0) < 0.04 * 143.0
    assert "downbeatOffset" not in grid  # a tempo estimate, not a beatgrid

    per_track = ev.evaluate_predictions(tracks, refs, {"librosa": out}, trim_seconds=2.0)
    assert per_track["downbeat_f"].isna().all()  # not scored 0
    assert per_track["grid_phase_error_ms"].isna().all()
    assert (per_track["tempo_acc1"] == 1).all()
    assert (per_track["beat_f"] > 0.9).all()


def test_unknown_tracker_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="madmom"):
        peers.write_peer_predictions(pd.DataFrame(), tmp_path, tracker="madmom")


def test_a_track_whose_audio_fails_is_skipped_with_a_warning_naming_the_file(tmp_path, caplog):
    tracks = pd.DataFrame([{"track_id": "x", "audio_path": str(tmp_path / "nope.wav"), "duration_s": 1.0}])
    assert peers.write_peer_predictions(tracks, tmp_path / "out") == []
    assert "nope.wav" in caplog.text and "skipped" in caplog.text


def test_gather_predictions_joins_shard_folders_and_refuses_clashes(tmp_path):
    for shard, names in {"000": ["a"], "001": ["b", "c"]}.items():
        folder = tmp_path / "reference" / shard
        folder.mkdir(parents=True)
        for name in names:
            (folder / f"{name}.beats").write_text(f"{name}\n")
        (folder / ".snakemake_timestamp").write_text("")
    shards = [tmp_path / "reference" / s for s in ("000", "001")]
    written = peers.gather_predictions(shards, tmp_path / "librosa")
    assert sorted(p.name for p in written) == ["a.beats", "b.beats", "c.beats"]
    assert (tmp_path / "librosa" / "c.beats").read_text() == "c\n"
    (shards[1] / "a.beats").write_text("again\n")
    with pytest.raises(ValueError, match="a.beats is in two shard folders"):
        peers.gather_predictions(shards, tmp_path / "again")
