"""Import of Beat This!'s spectrogram bundles (synthetic bundles in the published layout)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from beatgrid.beat_this_import import (
    BeatThisImportError,
    beat_this_track_id,
    import_beat_this_bundle,
    read_beat_this_bundle,
)
from beatgrid.data.dataset import load_frame_dataset
from beatgrid.data.store import list_track_ids, read_attrs, read_track_array, read_track_attrs
from beatgrid.features import MelConfig
from beatgrid.data.tracks import REJECTED_COLUMNS

PIECES = {  # piece -> frames
    "toy_a": 300,
    "toy_b": 180,
    "toy_c": 120,  # has no annotation
}


def _spect(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((frames, 128)) * 8).astype(np.float16)


def _annotations(root, has_downbeats=True):
    folder = root / "toy"
    beats_dir = folder / "annotations" / "beats"
    beats_dir.mkdir(parents=True)
    (folder / "info.json").write_text(json.dumps({"has_downbeats": has_downbeats}))
    (folder / "single.split").write_text("toy_a\ttrain\ntoy_b\tval\n")
    (beats_dir / "toy_a.beats").write_text("0.5\t1\n1.0\t2\n1.5\t3\n2.0\t1\n2.5\t2\n")
    (beats_dir / "toy_b.beats").write_text("0.4\t1\n0.9\t2\n1.4\t1\n")
    return root


@pytest.fixture
def bundle(tmp_path):
    arrays = {}
    for seed, (piece, frames) in enumerate(PIECES.items()):
        arrays[f"{piece}/track"] = _spect(frames, seed)
        arrays[f"{piece}/track_ps1"] = _spect(frames, seed + 10)  # augmented copies are skipped
        arrays[f"{piece}/track_ts-4"] = _spect(frames + 12, seed + 20)
    path = tmp_path / "toy.npz"
    np.savez(path, **arrays)
    return path, arrays


def test_import_writes_mel_and_target_stores(tmp_path, bundle):
    npz_path, arrays = bundle
    annotations = _annotations(tmp_path / "beat_this_annotations")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="1 of 3 pieces not imported"):
        tracks, rejected = import_beat_this_bundle(
            npz_path, annotations, out / "mels" / "toy.h5", out / "tracks.csv",
            out_targets_path=out / "targets" / "toy.h5", out_rejected_csv=out / "rejected.csv",
            progress=False,
        )
    mels, targets = out / "mels" / "toy.h5", out / "targets" / "toy.h5"
    # the same attrs as a mel store computed from audio
    assert read_attrs(mels) == pytest.approx({**MelConfig().store_attrs(), "source": "beat_this:toy.npz"})
    assert list_track_ids(mels) == list_track_ids(targets) == ["toy_a", "toy_b"]
    for piece in ("toy_a", "toy_b"):
        stored = read_track_array(mels, piece, "mel")
        assert stored.dtype == np.float16
        np.testing.assert_array_equal(stored, arrays[f"{piece}/track"])  # un-augmented array, bit-exact
        assert read_track_array(targets, piece, "beat").shape == (PIECES[piece],)
    beat = read_track_array(targets, "toy_a", "beat")
    np.testing.assert_array_equal(np.flatnonzero(beat == 1.0), [25, 50, 75, 100, 125])
    np.testing.assert_array_equal(np.flatnonzero(read_track_array(targets, "toy_a", "downbeat") == 1.0), [25, 100])
    assert read_track_attrs(targets, "toy_a")["has_downbeats"] is True

    assert list(tracks.columns) == ["track_id", "dataset", "audio_path", "annotation_path", "annotation_format",
                                    "has_downbeats", "duration_s", "split", "shard"]
    assert tracks["split"].tolist() == ["train", "val"]  # from single.split
    assert tracks["duration_s"].tolist() == pytest.approx([6.0, 3.6])
    assert (tracks["dataset"] == "toy").all() and (tracks["shard"] == "toy").all()
    pd.testing.assert_frame_equal(pd.read_csv(out / "tracks.csv", keep_default_na=False),
                                  tracks.astype({"audio_path": str}), check_dtype=False)
    assert list(rejected.columns) == REJECTED_COLUMNS  # as the index's rejected.csv
    assert rejected["audio_path"].str.endswith(":toy_c/track").tolist() == [True]
    assert rejected["annotation_path"].str.endswith("toy_c.beats").tolist() == [True]
    assert "annotation file missing" in rejected["reason"].iloc[0]
    assert len(pd.read_csv(out / "rejected.csv")) == 1

    # the imported stores train like computed ones
    dataset = load_frame_dataset([mels], "mel", [targets], tracks["track_id"], crop_frames=100)
    x, y, _ = dataset[0]
    assert x.shape == (100, 128) and y.shape == (100, 2)


def test_import_without_downbeats_and_with_a_fixed_split(tmp_path, bundle):
    npz_path, _ = bundle
    annotations = _annotations(tmp_path / "ann", has_downbeats=False)
    with pytest.warns(UserWarning):
        tracks, _ = import_beat_this_bundle(npz_path, annotations / "toy", tmp_path / "m.h5",
                                            out_targets_path=tmp_path / "t.h5", split="test", progress=False)
    assert (tracks["split"] == "test").all()
    assert not tracks["has_downbeats"].any()
    assert not read_track_array(tmp_path / "t.h5", "toy_a", "downbeat").any()
    assert read_track_attrs(tmp_path / "t.h5", "toy_a")["has_downbeats"] is False


def test_unzipped_bundle_folder_is_read_too(tmp_path, bundle):
    _, arrays = bundle
    folder = tmp_path / "toy"
    for key, array in arrays.items():
        (folder / key.split("/")[0]).mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{key}.npy", array)
    from_folder = dict(read_beat_this_bundle(folder))
    assert sorted(from_folder) == sorted(PIECES)
    np.testing.assert_array_equal(from_folder["toy_b"], arrays["toy_b/track"])


def test_import_refuses_other_mel_settings(tmp_path, bundle):
    npz_path, _ = bundle
    annotations = _annotations(tmp_path / "ann")
    with pytest.raises(BeatThisImportError, match="n_mels"):
        import_beat_this_bundle(npz_path, annotations, tmp_path / "m.h5", cfg=MelConfig(n_mels=80), progress=False)
    assert not (tmp_path / "m.h5").exists()


def test_import_rejects_unusable_inputs(tmp_path):
    annotations = _annotations(tmp_path / "ann")
    with pytest.raises(BeatThisImportError, match="not found"):
        list(read_beat_this_bundle(tmp_path / "missing.npz"))
    np.savez(tmp_path / "augmented_only.npz", **{"toy_a/track_ps1": _spect(10, 0)})
    with pytest.raises(BeatThisImportError, match="no '<piece>/track'"):
        list(read_beat_this_bundle(tmp_path / "augmented_only.npz"))
    np.savez(tmp_path / "toy.npz", **{"toy_a/track": _spect(10, 0)})
    with pytest.raises(BeatThisImportError, match="annotations/beats"):
        import_beat_this_bundle(tmp_path / "toy.npz", tmp_path / "nowhere", tmp_path / "m.h5", progress=False)
    np.savez(tmp_path / "bad.npz", **{"toy_a/track": np.zeros((10, 64), np.float16),
                                      "toy_b/track": _spect(200, 1)})
    with pytest.warns(UserWarning):
        tracks, rejected = import_beat_this_bundle(tmp_path / "bad.npz", annotations, tmp_path / "m.h5",
                                                   dataset_name="toy", progress=False)
    assert tracks["track_id"].tolist() == ["toy_b"]
    assert "expected [T, 128]" in rejected["reason"].iloc[0]


def test_track_ids_are_filesystem_safe():
    assert beat_this_track_id("gtzan", "gtzan_blues_00000") == "gtzan_blues_00000"
    assert beat_this_track_id("rwc", "RM-P001 (take 2)") == "rwc_RM-P001__take_2_"



def test_command_line_entry(tmp_path, bundle):
    from beatgrid.beat_this_import import main

    npz_path, _ = bundle
    annotations = _annotations(tmp_path / "ann")
    with pytest.warns(UserWarning):
        assert main([str(npz_path), str(annotations), "--out", str(tmp_path / "out"), "--split", "train"]) == 0
    assert list_track_ids(tmp_path / "out" / "mels" / "toy.h5") == ["toy_a", "toy_b"]
    assert list_track_ids(tmp_path / "out" / "targets" / "toy.h5") == ["toy_a", "toy_b"]
    assert pd.read_csv(tmp_path / "out" / "toy_tracks.csv")["split"].tolist() == ["train", "train"]
    assert len(pd.read_csv(tmp_path / "out" / "toy_rejected.csv")) == 1
