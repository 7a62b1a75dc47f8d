"""beatgrid.data.index: dataset readers, bad-input rejection, track ids, splits, shards."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from beatgrid.data.index import (
    assign_splits,
    build_index,
    make_track_id,
    n_shards_for,
    shard_of,
    split_of,
)
from beatgrid.data.tracks import EXTRA_COLUMNS, REJECTED_COLUMNS, TRACK_COLUMNS, read_index, write_index

SPLIT = {"val_fraction": 0.15, "test_fraction": 0.15, "seed": 0, "test_datasets": []}
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def _wav(path: Path, duration_s: float = 3.0, sr: int = 8000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(path.name)).uniform(-0.1, 0.1, (int(duration_s * sr), channels))
    sf.write(path, noise, sr, subtype="PCM_16")
    return path


def _beats(path: Path, times=(0.5, 1.0, 1.5, 2.0, 2.5), positions=(1, 2, 3, 4, 1)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if positions is None:
        path.write_text("".join(f"{t}\n" for t in times))
    else:
        path.write_text("".join(f"{t}\t{p}\n" for t, p in zip(times, positions)))
    return path


def _reason(rejected: pd.DataFrame, needle: str) -> str:
    """The reason of the one rejected row whose paths contain ``needle``."""
    rows = rejected[rejected.audio_path.str.contains(needle, regex=False)
                    | rejected.annotation_path.str.contains(needle, regex=False)]  # fmt: skip
    assert len(rows) == 1, f"{needle}: {rows.to_dict('records')}"
    return rows.reason.iloc[0]


# --------------------------------------------------------------------------- readers


def test_beats_dir_pairs_ballroom_and_gtzan_naming_recursively(tmp_path):
    audio, ann = tmp_path / "audio", tmp_path / "annotations"
    _wav(audio / "Waltz" / "Media-105901.wav")  # Ballroom: genre sub-folders, flat annotations
    _beats(ann / "Media-105901.beats", positions=(1, 2, 3, 1, 2))
    _wav(audio / "blues" / "blues.00001.wav", channels=2, sr=22050)  # GTZAN + Beat This! names
    _beats(ann / "beats" / "gtzan_blues_00001.beats")
    _wav(audio / "rock" / "rock.00002.au.wav")
    _beats(ann / "rock.00002.au.beats", positions=None)

    tracks, rejected = build_index(
        {"mix": {"format": "beats_dir", "audio_dir": str(audio), "annotations_dir": str(ann)}}, SPLIT, 16
    )
    assert rejected.empty, rejected.to_dict("records")
    assert list(tracks.columns) == TRACK_COLUMNS + EXTRA_COLUMNS
    by_id = tracks.set_index("track_id")
    assert sorted(by_id.index) == ["mix_Media-105901", "mix_blues.00001", "mix_rock.00002.au"]
    assert by_id.loc["mix_blues.00001", "annotation_path"].endswith("beats/gtzan_blues_00001.beats")
    assert by_id.loc["mix_blues.00001", "duration_s"] == pytest.approx(3.0)
    assert by_id.loc["mix_Media-105901", "beats_per_bar"] == 3
    assert not by_id.loc["mix_rock.00002.au", "has_downbeats"]
    assert by_id.loc["mix_Media-105901", "bpm"] == pytest.approx(120.0)
    assert (tracks.annotation_format == "beats").all() and (tracks.dataset == "mix").all()


def test_synth_reads_the_rendered_batches(tmp_path):
    batches = [tmp_path / "demo" / "batch00", tmp_path / "demo" / "batch01"]
    for i in range(4):
        folder = batches[i % 2]
        _wav(folder / f"track{i:04d}.wav", duration_s=2.0, sr=22050)
        _beats(folder / f"track{i:04d}.beats", times=(0.1, 0.6, 1.1, 1.6), positions=(1, 2, 3, 4))
        (folder / f"track{i:04d}.labels.json").write_text('{"bpm": 120}')
    tracks, rejected = build_index({"demo": {"format": "synth", "n_tracks": 4, "duration_s": 2, "seed": 0}},
                                   SPLIT, 2, synth_dirs={"demo": batches})  # fmt: skip
    assert rejected.empty
    assert list(tracks.track_id) == [f"demo_track{i:04d}" for i in range(4)]
    assert (tracks.n_beats == 4).all() and tracks.has_downbeats.all()
    assert set(tracks.shard) <= {"000", "001"}
    with pytest.raises(ValueError, match="demo"):
        build_index({"demo": {"format": "synth"}}, SPLIT, 2)
    # Batches render whole; only the first n_tracks demo tracks are indexed.
    tracks, rejected = build_index({"demo": {"format": "synth", "n_tracks": 3, "duration_s": 2, "seed": 0}},
                                   SPLIT, 2, synth_dirs={"demo": batches})  # fmt: skip
    assert rejected.empty and list(tracks.track_id) == [f"demo_track{i:04d}" for i in range(3)]


def test_label_json_pairs_by_file_name_then_by_stem(tmp_path):
    audio, labels = tmp_path / "music", tmp_path / "labels"
    _wav(audio / "Artist - Song (Remix).flac", duration_s=4.0)
    labels.mkdir()
    (labels / "whatever.labels.json").write_text(json.dumps(
        {"fileName": "Artist - Song (Remix).flac", "bpm": 128.37, "downbeatOffset": 0.25, "duration": 4.0}))  # fmt: skip
    _wav(audio / "sub" / "second.wav", duration_s=4.0)
    (labels / "second.labels.json").write_text(json.dumps({"bpm": 90.0, "beatsPerBar": 3}))
    (labels / "orphan.labels.json").write_text(json.dumps({"bpm": 90.0, "fileName": "gone.mp3"}))
    _wav(audio / "unlabelled.wav")
    (labels / "zero.labels.json").write_text(json.dumps({"bpm": 0}))
    _wav(audio / "zero.wav")

    tracks, rejected = build_index(
        {"dj": {"format": "label_json", "audio_dir": str(audio), "labels_dir": str(labels)}}, SPLIT, 16
    )
    by_id = tracks.set_index("track_id")
    assert sorted(by_id.index) == ["dj_Artist_-_Song_Remix", "dj_second"]
    song = by_id.loc["dj_Artist_-_Song_Remix"]
    assert song.annotation_format == "label_json" and song.bpm == pytest.approx(128.37)
    k = np.arange(-10, 20)
    assert song.n_beats == np.sum((0.25 + k * 60 / 128.37 >= 0) & (0.25 + k * 60 / 128.37 < 4.0))
    assert by_id.loc["dj_second", "beats_per_bar"] == 3
    assert "no audio found for label" in _reason(rejected, "orphan.labels.json")
    assert _reason(rejected, "unlabelled.wav") == "no annotation found for audio"
    assert _reason(rejected, "zero.labels.json") == "label JSON bpm 0 is not positive"


def test_index_csv_paths_are_relative_to_the_csv_and_rows_name_their_dataset(tmp_path, monkeypatch):
    root = tmp_path / "realish"
    _wav(root / "gtzan" / "audio" / "gtzan_pop_00001.wav")
    _beats(root / "gtzan" / "annotations" / "gtzan_pop_00001.beats")
    _wav(root / "simac" / "a.flac".replace(".flac", ".wav"))
    _beats(root / "simac" / "a.beats")
    (root / "dataset_index.csv").write_text(
        "dataset,audio_path,beats_path,has_downbeats\n"
        "gtzan,gtzan/audio/gtzan_pop_00001.wav,gtzan/annotations/gtzan_pop_00001.beats,True\n"
        "simac,simac/a.wav,simac/a.beats,False\n"
        "simac,simac/missing.wav,simac/a.beats,False\n"
    )
    monkeypatch.chdir(tmp_path)
    tracks, rejected = build_index({"shared": {"format": "index_csv", "path": "realish/dataset_index.csv"}},
                                   {**SPLIT, "test_datasets": ["simac"]}, 16)  # fmt: skip
    by_id = tracks.set_index("track_id")
    assert sorted(by_id.index) == ["gtzan_pop_00001", "simac_a"]
    assert by_id.loc["gtzan_pop_00001", "audio_path"] == "realish/gtzan/audio/gtzan_pop_00001.wav"
    assert by_id.loc["gtzan_pop_00001", "dataset"] == "gtzan"
    assert by_id.loc["gtzan_pop_00001", "source"] == "shared"
    assert by_id.loc["gtzan_pop_00001", "has_downbeats"]
    assert not by_id.loc["simac_a", "has_downbeats"]  # the CSV's False wins over the positions
    assert by_id.loc["simac_a", "split"] == "test"
    assert _reason(rejected, "missing.wav") == "audio file missing"


def test_index_csv_groups_share_a_split_and_reach_tracks_csv(tmp_path):
    """Two mixes of one piece (the CSV's ``group``) are never split between training and test."""
    rows = ["dataset,audio_path,beats_path,group"]
    for piece in range(12):
        for mix in ("bass", "piano"):
            _wav(tmp_path / f"p{piece}_{mix}.wav")
            _beats(tmp_path / f"p{piece}_{mix}.beats")
            rows.append(f"jazz,p{piece}_{mix}.wav,p{piece}_{mix}.beats,piece{piece}")
    _wav(tmp_path / "alone.wav")
    _beats(tmp_path / "alone.beats")
    rows.append("jazz,alone.wav,alone.beats,")
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")
    split = {**SPLIT, "val_fraction": 0.3, "test_fraction": 0.3}
    tracks, rejected = build_index({"jazz": {"format": "index_csv", "path": str(tmp_path / "index.csv")}}, split, 16)
    assert rejected.empty and len(tracks) == 25
    by_id = tracks.set_index("track_id")
    assert by_id.loc["jazz_alone", "group"] == ""
    for piece in range(12):
        assert by_id.loc[f"jazz_p{piece}_bass", "group"] == f"piece{piece}"
        assert by_id.loc[f"jazz_p{piece}_bass", "split"] == by_id.loc[f"jazz_p{piece}_piano", "split"]
        assert by_id.loc[f"jazz_p{piece}_bass", "split"] == split_of(f"piece{piece}", 0, 0.3, 0.3)
    assert tracks["split"].nunique() == 3  # the groups do spread over the splits
    write_index(tracks, rejected, tmp_path / "tracks.csv", tmp_path / "rejected.csv")
    assert read_index(tmp_path / "tracks.csv").set_index("track_id")["group"].to_dict() == by_id["group"].to_dict()


def test_group_pattern_names_groups_from_the_audio_stem_and_an_index_group_wins(tmp_path):
    for stem in ("Song A (Radio Edit)", "Song A (Extended Mix)", "Song B (Radio Edit)", "Intro"):
        _wav(tmp_path / "audio" / f"{stem}.wav")
        _beats(tmp_path / "ann" / f"{stem}.beats")
    pattern = r"^(.*?) \("
    tracks, _ = build_index({"cat": {"format": "beats_dir", "audio_dir": str(tmp_path / "audio"),
                                     "annotations_dir": str(tmp_path / "ann"), "group_pattern": pattern}}, SPLIT, 16)
    groups = dict(zip(tracks["audio_path"].map(lambda p: Path(p).stem), tracks["group"]))
    assert groups == {"Song A (Radio Edit)": "Song A", "Song A (Extended Mix)": "Song A",
                      "Song B (Radio Edit)": "Song B", "Intro": ""}  # no match: a group of its own
    by_stem = dict(zip(tracks["audio_path"].map(lambda p: Path(p).stem), tracks["split"]))
    assert by_stem["Song A (Radio Edit)"] == by_stem["Song A (Extended Mix)"] == split_of("Song A", 0, 0.15, 0.15)
    (tmp_path / "index.csv").write_text("dataset,audio_path,beats_path,group\n"
                                        "cat,audio/Song A (Radio Edit).wav,ann/Song A (Radio Edit).beats,album1\n"
                                        "cat,audio/Song B (Radio Edit).wav,ann/Song B (Radio Edit).beats,\n")
    tracks, _ = build_index({"cat": {"format": "index_csv", "path": str(tmp_path / "index.csv"),
                                     "group_pattern": pattern}}, SPLIT, 16)
    assert sorted(tracks["group"]) == ["Song B", "album1"]  # the CSV's own group wins over the pattern
    with pytest.raises(ValueError, match=r"datasets.cat.group_pattern: '\^x' has no capture group"):
        build_index({"cat": {"format": "index_csv", "path": str(tmp_path / "index.csv"), "group_pattern": "^x"}},
                    SPLIT, 16)


def test_missing_folders_and_unknown_test_datasets_stop_with_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio_dir"):
        build_index({"x": {"format": "beats_dir", "audio_dir": str(tmp_path / "no"),
                           "annotations_dir": str(tmp_path)}}, SPLIT, 16)  # fmt: skip
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_index({"x": {"format": "index_csv", "path": str(tmp_path / "none.csv")}}, SPLIT, 16)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="beats_path"):
        build_index({"x": {"format": "index_csv", "path": str(bad_csv)}}, SPLIT, 16)
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="test_datasets.*gtzn"):
        build_index({"x": {"format": "beats_dir", "audio_dir": str(tmp_path / "a"),
                           "annotations_dir": str(tmp_path / "a")}},
                    {**SPLIT, "test_datasets": ["gtzn"]}, 16)  # fmt: skip


# --------------------------------------------------------------------------- bad inputs


def test_every_bad_input_is_rejected_with_its_reason_and_the_rest_is_indexed(tmp_path):
    d = tmp_path / "data"
    _wav(d / "good.wav")
    _beats(d / "good.beats")
    (d / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    _beats(d / "corrupt.beats")
    (d / "truncated.wav").write_bytes((d / "good.wav").read_bytes()[:30])
    _beats(d / "truncated.beats")
    (d / "empty_audio.wav").write_bytes(b"")
    _beats(d / "empty_audio.beats")
    for name, text in {
        "garbage": "0.5 1\nthis is not a beat\n",
        "unsorted": "0.5 1\n1.0 2\n0.7 3\n",
        "negative": "-0.5 1\n1.0 2\n",
        "past_end": "1.0 1\n2.0 2\n3.5 3\n",
        "empty": "",
        "no_positions_mixed": "0.5\n1.0 2\n",
    }.items():
        _wav(d / f"{name}.wav")
        (d / f"{name}.beats").write_text(text)
    _wav(d / "no_annotation.wav")
    _beats(d / "no_audio.beats")
    (d / "notes.txt").write_text("ignored: neither audio nor annotation")

    tracks, rejected = build_index({"x": {"format": "beats_dir", "audio_dir": str(d),
                                          "annotations_dir": str(d)}}, SPLIT, 16)  # fmt: skip
    assert list(tracks.track_id) == ["x_good"]
    assert list(rejected.columns) == REJECTED_COLUMNS
    assert len(rejected) == 11
    assert _reason(rejected, "corrupt.wav").startswith("audio undecodable")
    assert _reason(rejected, "truncated.wav").startswith("audio undecodable")
    assert _reason(rejected, "empty_audio.wav") == "audio file is empty (0 bytes)"
    assert _reason(rejected, "garbage.beats").startswith("annotation unparsable at line 2")
    assert _reason(rejected, "unsorted.beats").startswith("annotation unsorted at line 3")
    assert _reason(rejected, "negative.beats").startswith("annotation has a negative time")
    assert _reason(rejected, "past_end.beats") == "beat at 3.50 s is past the end of the audio (3.00 s)"
    assert _reason(rejected, "empty.beats") == "annotation is empty (no beats)"
    assert _reason(rejected, "no_positions_mixed.beats").startswith("annotation unparsable at line 2")
    assert _reason(rejected, "no_annotation.wav") == "no annotation found for audio"
    assert _reason(rejected, "no_audio.beats") == "no audio found for annotation"
    # rows are sorted, so the file is identical from run to run
    assert rejected.equals(rejected.sort_values(REJECTED_COLUMNS).reset_index(drop=True))


def test_audio_that_would_fail_a_feature_job_is_rejected_at_the_index(tmp_path):
    """The index decodes every file once: NaN/inf samples, silence and sub-frame audio are
    rejected with their reason instead of stopping the mels job later."""
    d = tmp_path / "data"
    _wav(d / "good.wav")
    nan = np.random.default_rng(1).uniform(-0.1, 0.1, (3 * 8000, 1))
    nan[5000] = np.nan
    sf.write(d / "nan.wav", nan, 8000, subtype="FLOAT")
    inf = np.random.default_rng(2).uniform(-0.1, 0.1, (3 * 8000, 1))
    inf[100, 0] = np.inf
    sf.write(d / "inf.wav", inf, 8000, subtype="FLOAT")
    sf.write(d / "silent.wav", np.zeros((3 * 8000, 1)), 8000, subtype="PCM_16")
    sf.write(d / "blip.wav", np.full((200, 1), 0.1), 8000, subtype="PCM_16")  # 25 ms
    for name in ("good", "nan", "inf", "silent"):
        _beats(d / f"{name}.beats")
    _beats(d / "blip.beats", times=(0.01,), positions=(1,))
    tracks, rejected = build_index({"x": {"format": "beats_dir", "audio_dir": str(d), "annotations_dir": str(d)}},
                                   SPLIT, 16, min_duration_s=1024 / 22050)  # fmt: skip
    assert list(tracks.track_id) == ["x_good"]
    assert _reason(rejected, "nan.wav") == "audio contains non-finite samples (NaN or inf)"
    assert _reason(rejected, "inf.wav") == "audio contains non-finite samples (NaN or inf)"
    assert _reason(rejected, "silent.wav") == "audio is silent (every sample is 0)"
    assert _reason(rejected, "blip.wav").startswith("audio is too short: 200 samples at 8000 Hz (25.0 ms)")


def test_beats_dir_reads_jams_and_txt_annotations_and_an_index_csv_names_them(tmp_path):
    """JAMS and .txt files pair with audio like .beats files; a .beats and a .jams of one stem are ambiguous."""
    audio, ann = tmp_path / "audio", tmp_path / "ann"
    _wav(audio / "waltz.wav")
    fixture = Path(__file__).parent / "data" / "index" / "waltz_two_annotators.jams"
    (ann / "waltz.jams").parent.mkdir(parents=True)
    (ann / "waltz.jams").write_text(fixture.read_text())
    _wav(audio / "both.wav")
    _beats(ann / "both.beats")
    (ann / "both.jams").write_text(fixture.read_text())
    (ann / "broken.jams").write_text('{"annotations": [{"namespace": "chord", "data": []}]}')
    _wav(audio / "broken.wav")
    tracks, rejected = build_index({"x": {"format": "beats_dir", "audio_dir": str(audio),
                                          "annotations_dir": str(ann)}}, SPLIT, 16)  # fmt: skip
    (row,) = tracks.to_dict("records")
    assert row["track_id"] == "x_waltz" and row["annotation_format"] == "jams"
    assert row["beats_per_bar"] == 3 and row["has_downbeats"] and row["n_beats"] == 5
    assert _reason(rejected, "audio/both.wav").startswith("ambiguous annotation")
    assert "no beat annotation" in _reason(rejected, "broken.jams")

    _wav(audio / "0001_harmonix.wav")  # Harmonix names its beat files .txt: time, position, bar number
    (ann / "0001_harmonix.txt").write_text("0.5\t1\t1\n1.0\t2\t1\n1.5\t1\t2\n2.0\t2\t2\n")
    _wav(audio / "sung.wav")  # a .beats file wins over a .txt of the same stem (lyrics, say)
    _beats(ann / "sung.beats")
    (ann / "sung.txt").write_text("la la la\n")
    (ann / "README.txt").write_text("annotations by ...\n")  # pairs with nothing: not reported
    tracks, rejected = build_index({"x": {"format": "beats_dir", "audio_dir": str(audio), "annotations_dir": str(ann)}},
                                   SPLIT, 16)  # fmt: skip
    by_id = tracks.set_index("track_id")
    assert by_id.loc["x_0001_harmonix", "annotation_format"] == "beats"
    assert by_id.loc["x_0001_harmonix", "beats_per_bar"] == 2
    assert by_id.loc["x_sung", "annotation_path"].endswith("sung.beats")
    assert not rejected.annotation_path.str.endswith(".txt").any()

    (tmp_path / "dataset_index.csv").write_text("dataset,audio_path,beats_path\nmine,audio/waltz.wav,ann/waltz.jams\n")
    tracks, rejected = build_index({"csv": {"format": "index_csv", "path": str(tmp_path / "dataset_index.csv")}},
                                   SPLIT, 16)  # fmt: skip
    assert rejected.empty and list(tracks.annotation_format) == ["jams"] and list(tracks.beats_per_bar) == [3]


def test_ambiguous_annotations_are_rejected_not_guessed(tmp_path):
    audio, ann = tmp_path / "audio", tmp_path / "ann"
    _wav(audio / "x" / "a.wav")
    _beats(ann / "p" / "a.beats")
    _beats(ann / "q" / "a.beats")
    tracks, rejected = build_index({"x": {"format": "beats_dir", "audio_dir": str(audio),
                                          "annotations_dir": str(ann)}}, SPLIT, 16)  # fmt: skip
    assert tracks.empty and len(rejected) == 1
    assert rejected.reason.iloc[0].startswith("ambiguous annotation")
    assert "p/a.beats" in rejected.reason.iloc[0] and "q/a.beats" in rejected.reason.iloc[0]


def test_label_json_bad_bpm_values_are_rejected(tmp_path):
    audio, labels = tmp_path / "audio", tmp_path / "labels"
    labels.mkdir()
    for name, data in {"zero": {"bpm": 0}, "missing": {"duration": 3.0}, "text": {"bpm": "abc"},
                       "negdur": {"bpm": 120, "duration": -1}, "ok": {"bpm": 120}}.items():  # fmt: skip
        _wav(audio / f"{name}.wav")
        (labels / f"{name}.labels.json").write_text(json.dumps(data))
    tracks, rejected = build_index({"l": {"format": "label_json", "audio_dir": str(audio),
                                          "labels_dir": str(labels)}}, SPLIT, 16)  # fmt: skip
    assert list(tracks.track_id) == ["l_ok"]
    assert _reason(rejected, "zero.labels") == "label JSON bpm 0 is not positive"
    assert _reason(rejected, "missing.labels") == "label JSON has no 'bpm'"
    assert _reason(rejected, "text.labels") == "label JSON 'bpm' is not a number: 'abc'"
    assert _reason(rejected, "negdur.labels") == "label JSON duration -1 s is not positive"


def test_label_json_that_contradicts_its_audio_is_rejected(tmp_path):
    audio, labels = tmp_path / "audio", tmp_path / "labels"
    labels.mkdir()
    for name, data in {"longer": {"bpm": 120, "duration": 63.0}, "offset": {"bpm": 120, "downbeatOffset": 7.5},
                       "close": {"bpm": 120, "duration": 3.4, "downbeatOffset": 0.2}}.items():  # fmt: skip
        _wav(audio / f"{name}.wav", duration_s=3.0)
        (labels / f"{name}.labels.json").write_text(json.dumps(data))
    tracks, rejected = build_index({"l": {"format": "label_json", "audio_dir": str(audio),
                                          "labels_dir": str(labels)}}, SPLIT, 16)  # fmt: skip
    assert list(tracks.track_id) == ["l_close"]  # within the tolerance: decoder padding, rounding
    assert "label duration 63.00 s disagrees with the audio's 3.00 s" in _reason(rejected, "longer.labels")
    assert "downbeatOffset 7.50 s is outside the audio" in _reason(rejected, "offset.labels")


def test_duplicate_track_ids_keep_the_first_path(tmp_path):
    d = tmp_path / "d"
    for folder in ("a", "b"):
        _wav(d / folder / "song.wav")
        _beats(d / folder / "song.beats")
    _wav(d / "c" / "Song.wav")  # same id but for case: collides on case-insensitive disks
    _beats(d / "c" / "Song.beats")
    tracks, rejected = build_index({"x": {"format": "beats_dir", "audio_dir": str(d),
                                          "annotations_dir": str(d)}}, SPLIT, 16)  # fmt: skip
    assert list(tracks.track_id) == ["x_song"]
    assert tracks.audio_path.iloc[0].endswith("a/song.wav")
    assert len(rejected) == 2
    for folder, track_id in (("b/song.wav", "x_song"), ("c/Song.wav", "x_Song")):
        assert _reason(rejected, folder) == f"duplicate track_id {track_id} (also from {d.as_posix()}/a/song.wav)"


def test_index_does_not_depend_on_discovery_order(tmp_path):
    d = tmp_path / "d"
    for i in (3, 1, 2, 0):
        _wav(d / f"t{i}.wav", duration_s=2.0)
        _beats(d / f"t{i}.beats", times=(0.5, 1.0))
    config = {"x": {"format": "beats_dir", "audio_dir": str(d), "annotations_dir": str(d)}}
    first = build_index(config, SPLIT, 2)
    second = build_index(dict(reversed(list(config.items()))), SPLIT, 2)
    pd.testing.assert_frame_equal(first[0], second[0])
    assert list(first[0].track_id) == sorted(first[0].track_id)


def test_write_and_read_index_round_trip(tmp_path):
    d = tmp_path / "d"
    _wav(d / "a.wav")
    _beats(d / "a.beats", positions=None)
    _wav(d / "b.wav")
    tracks, rejected = build_index({"x": {"format": "beats_dir", "audio_dir": str(d),
                                          "annotations_dir": str(d)}}, SPLIT, 16)  # fmt: skip
    out = tmp_path / "results" / "index"
    write_index(tracks, rejected, out / "tracks.csv", out / "rejected.csv")
    assert sorted(p.name for p in out.iterdir()) == ["rejected.csv", "tracks.csv"]  # no temp files left
    back = read_index(out / "tracks.csv")
    assert back.shard.iloc[0] == "000" and back.has_downbeats.dtype == bool
    assert pd.isna(back.beats_per_bar.iloc[0])
    pd.testing.assert_frame_equal(back[TRACK_COLUMNS], tracks[TRACK_COLUMNS], check_dtype=False)
    assert pd.read_csv(out / "rejected.csv").reason.tolist() == ["no annotation found for audio"]


# --------------------------------------------------------------------------- track ids


@pytest.mark.parametrize(
    "dataset, stem, expected",
    [
        ("gtzan", "blues.00001", "gtzan_blues.00001"),
        ("gtzan", "gtzan_blues_00001", "gtzan_blues_00001"),
        ("ballroom", "Media-105901", "ballroom_Media-105901"),
        ("mine", "Björk - Jóga (Live)", "mine_Bjork_-_Joga_Live"),
        ("mine", "../../etc/passwd", "mine_.._etc_passwd"),
        ("mine", ".hidden", "mine_hidden"),
    ],
)
def test_make_track_id(dataset, stem, expected):
    assert make_track_id(dataset, stem) == expected


def test_long_track_ids_are_shortened_but_stay_unique():
    a, b = make_track_id("d", "x" * 300 + "a"), make_track_id("d", "x" * 300 + "b")
    assert a != b and len(a) <= 120 and len(b) <= 120
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", a)


# --------------------------------------------------------------------------- splits


def _tracks(n: int, dataset: str = "d") -> pd.DataFrame:
    return pd.DataFrame({"track_id": [f"{dataset}_{i:04d}" for i in range(n)], "dataset": dataset})


def test_splits_follow_the_fractions_on_average():
    tracks = pd.concat([_tracks(4000, "a"), _tracks(2000, "b")], ignore_index=True)
    split = assign_splits(tracks, val_fraction=0.15, test_fraction=0.1, seed=0)
    for _, group in split.groupby("dataset"):
        shares = group["split"].value_counts(normalize=True)
        assert shares["test"] == pytest.approx(0.10, abs=0.02)
        assert shares["val"] == pytest.approx(0.15, abs=0.02)


def test_removing_or_adding_a_track_moves_no_other_track():
    tracks = _tracks(40)
    before = assign_splits(tracks, 0.15, 0.15, seed=0).set_index("track_id")["split"]
    assert set(before) == {"train", "val", "test"}
    for removed in tracks["track_id"]:
        after = assign_splits(tracks[tracks["track_id"] != removed], 0.15, 0.15, seed=0)
        after = after.set_index("track_id")["split"]
        assert after.equals(before.drop(removed)), f"removing {removed} moved another track"
    grown = pd.concat([tracks, _tracks(3, "new")], ignore_index=True)
    after = assign_splits(grown, 0.15, 0.15, seed=0).set_index("track_id")["split"]
    assert after.loc[before.index].equals(before)


def test_a_split_is_a_function_of_the_track_id_alone():
    alone = {t: assign_splits(_tracks(1).assign(track_id=t), 0.2, 0.2, seed=5)["split"].item()
             for t in _tracks(30)["track_id"]}
    together = assign_splits(_tracks(30), 0.2, 0.2, seed=5).set_index("track_id")["split"]
    assert together.to_dict() == alone
    assert alone == {t: split_of(t, 5, 0.2, 0.2) for t in alone}


def test_splits_are_deterministic_and_seeded():
    tracks = _tracks(50)
    first = assign_splits(tracks, 0.2, 0.2, seed=3).set_index("track_id").split
    shuffled = assign_splits(tracks.sample(frac=1, random_state=1), 0.2, 0.2, seed=3)
    assert shuffled.set_index("track_id").split.loc[first.index].equals(first)
    other_seed = assign_splits(tracks, 0.2, 0.2, seed=4).set_index("track_id").split
    assert not other_seed.equals(first)


def test_test_datasets_are_held_out_whole():
    tracks = pd.concat([_tracks(10, "demo"), _tracks(10, "gtzan")], ignore_index=True)
    split = assign_splits(tracks, 0.15, 0.15, seed=0, test_datasets=["gtzan"])
    assert (split[split.dataset == "gtzan"].split == "test").all()
    demo = split[split.dataset == "demo"].set_index("track_id")["split"]
    assert demo.equals(assign_splits(_tracks(10, "demo"), 0.15, 0.15, seed=0).set_index("track_id")["split"])


def test_a_group_with_a_track_in_a_test_dataset_is_held_out_whole():
    tracks = pd.concat([_tracks(4, "live"), _tracks(6, "studio")], ignore_index=True)
    tracks["group"] = ["p0", "", "", "", "p0", "p1", "", "", "", ""]  # p0: a live and a studio take
    split = assign_splits(tracks, 0.0, 0.0, seed=0, test_datasets=["live"]).set_index("track_id")["split"]
    assert (split[tracks["track_id"][:5]] == "test").all()  # the studio take of p0 too
    assert (split[tracks["track_id"][5:]] == "train").all()


def test_invalid_fractions():
    with pytest.raises(ValueError, match="< 1"):
        assign_splits(_tracks(5), 0.5, 0.5, seed=0)
    with pytest.raises(ValueError, match="val_fraction"):
        assign_splits(_tracks(5), -0.1, 0.5, seed=0)


# --------------------------------------------------------------------------- shards


@pytest.mark.parametrize(
    "n_tracks, per_shard, expected",
    [(0, 16, 1), (1, 16, 1), (16, 16, 1), (17, 16, 2), (48, 16, 4), (49, 16, 4), (65, 16, 8), (1000, 1, 1024)],
)
def test_n_shards_is_a_power_of_two(n_tracks, per_shard, expected):
    assert n_shards_for(n_tracks, per_shard) == expected


def test_shard_of_is_stable_and_spreads_tracks():
    ids = [f"demo_track{i:04d}" for i in range(400)]
    shards = [shard_of(t, 8) for t in ids]
    assert shards == [shard_of(t, 8) for t in ids]
    assert min(np.bincount(shards, minlength=8)) > 25
    # the documented hash (architecture.md): SHA-1, not Python's per-process salted hash()
    assert shards[7] == int(hashlib.sha1(ids[7].encode()).hexdigest(), 16) % 8
    # doubling the shard count splits each shard in two
    assert all(shard_of(t, 16) % 8 == s for t, s in zip(ids, shards))


def test_adding_a_track_changes_only_its_own_shard(tmp_path):
    d = tmp_path / "d"
    config = {"x": {"format": "beats_dir", "audio_dir": str(d), "annotations_dir": str(d)}}
    for i in range(5):
        _wav(d / f"t{i}.wav", duration_s=1.0)
        _beats(d / f"t{i}.beats", times=(0.5,), positions=None)
    before, _ = build_index(config, SPLIT, 2)  # ceil(5/2)=3 -> 4 shards
    _wav(d / "t5.wav", duration_s=1.0)
    _beats(d / "t5.beats", times=(0.5,), positions=None)
    after, _ = build_index(config, SPLIT, 2)  # ceil(6/2)=3 -> still 4 shards

    old = before.set_index("track_id").shard
    new = after.set_index("track_id").shard
    assert new.loc[old.index].equals(old)
    members = lambda table: table.groupby("shard").track_id.apply(frozenset).to_dict()  # noqa: E731
    changed = {s for s in set(members(before)) | set(members(after))
               if members(before).get(s) != members(after).get(s)}  # fmt: skip
    assert changed == {new.loc["x_t5"]}


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_realdata_index_csv_indexes_every_clip():
    csv = REALDATA / "dataset_index.csv"
    if not csv.is_file():
        pytest.skip(f"{csv} is absent (real clips are not part of the repository)")
    tracks, rejected = build_index({"shared": {"format": "index_csv", "path": str(csv)}}, SPLIT, 16)
    expected = len(pd.read_csv(csv))
    assert rejected.empty, rejected.to_dict("records")
    assert len(tracks) == expected == 42
    assert tracks.track_id.is_unique
    assert {"gtzan", "ballroom", "simac"} <= set(tracks.dataset)
    assert not tracks.set_index("dataset").loc["simac", "has_downbeats"]
    assert (tracks.duration_s > 2).all()
