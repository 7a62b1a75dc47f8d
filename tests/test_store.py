"""HDF5 stores: round trip, atomic writes, empty shards, multi-file reads."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from beatgrid.data.store import (
    StoreArrays,
    StoreError,
    atomic_h5,
    list_track_ids,
    read_attrs,
    read_store,
    read_store_track_attrs,
    read_track_array,
    read_track_attrs,
    write_track,
)


def _mel(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((frames, 8)).astype(np.float16)


def test_round_trip_keeps_arrays_dtypes_and_attrs(tmp_path):
    path = tmp_path / "shard" / "000.h5"  # parent folder is created
    mel = _mel(30)
    beat_times = np.array([0.1, 0.6, 1.1])
    with atomic_h5(path, attrs={"sr": 22050, "fps": 50.0, "model_kind": "crnn"}) as h5:
        write_track(h5, "track-b", {"mel": mel, "beat_times": beat_times}, attrs={"has_downbeats": False})
        write_track(h5, "track-a", {"mel": mel[:10]}, compression="lzf")
    assert read_attrs(path) == {"sr": 22050, "fps": 50.0, "model_kind": "crnn"}
    assert list_track_ids(path) == ["track-a", "track-b"]
    stored = read_track_array(path, "track-b", "mel")
    assert stored.dtype == np.float16
    np.testing.assert_array_equal(stored, mel)
    np.testing.assert_array_equal(read_track_array(path, "track-a", "mel"), mel[:10])
    np.testing.assert_array_equal(read_track_array(path, "track-b", "beat_times"), beat_times)
    assert read_track_attrs(path, "track-b") == {"has_downbeats": False}
    assert read_store_track_attrs(path) == {"track-a": {}, "track-b": {"has_downbeats": False}}
    with h5py.File(path, "r") as h5:  # the documented layout
        assert h5["tracks/track-b/mel"].shape == (30, 8)


def test_atomic_write_leaves_no_file_on_error(tmp_path):
    path = tmp_path / "000.h5"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_h5(path, attrs={"fps": 50.0}) as h5:
            write_track(h5, "a", {"mel": _mel(5)})
            assert not path.exists()  # nothing at the final name while writing
            raise RuntimeError("interrupted")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_previous_file_on_error(tmp_path):
    path = tmp_path / "000.h5"
    with atomic_h5(path) as h5:
        write_track(h5, "old", {"mel": _mel(5)})
    with pytest.raises(KeyboardInterrupt):
        with atomic_h5(path) as h5:
            write_track(h5, "new", {"mel": _mel(5)})
            raise KeyboardInterrupt
    assert list_track_ids(path) == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["000.h5"]


def test_empty_store_is_valid(tmp_path):
    path = tmp_path / "empty.h5"
    with atomic_h5(path, attrs={"fps": 50.0}):
        pass
    assert list_track_ids(path) == []
    assert read_store(path, "mel") == {}
    assert read_attrs(path)["fps"] == 50.0


def test_write_track_refuses_duplicates_and_bad_ids(tmp_path):
    with atomic_h5(tmp_path / "s.h5") as h5:
        write_track(h5, "a", {"mel": _mel(3)})
        with pytest.raises(ValueError, match="already"):
            write_track(h5, "a", {"mel": _mel(3)})
        for bad in ("", "a/b", ".."):
            with pytest.raises(ValueError, match="track_id"):
                write_track(h5, bad, {"mel": _mel(3)})


def test_read_store_across_shards(tmp_path):
    arrays = {f"t{i}": _mel(10 + i, seed=i) for i in range(5)}
    paths = [tmp_path / "000.h5", tmp_path / "001.h5"]
    for path, ids in zip(paths, (["t0", "t2", "t4"], ["t1", "t3"])):
        with atomic_h5(path) as h5:
            for track_id in ids:
                write_track(h5, track_id, {"mel": arrays[track_id]})
    everything = read_store(paths, "mel")
    assert sorted(everything) == sorted(arrays)
    for track_id, array in arrays.items():
        np.testing.assert_array_equal(everything[track_id], array)
    some = read_store(paths, "mel", track_ids=["t3", "t0"])
    assert list(some) == ["t3", "t0"]  # in the requested order
    with pytest.raises(StoreError, match="none of the stores.*t9"):
        read_store(paths, "mel", track_ids=["t0", "t9"])
    with pytest.raises(StoreError, match="two stores"):
        read_store([paths[0], paths[0]], "mel")
    with pytest.raises(StoreError, match="no array 'beat'"):
        read_store(paths, "beat")


def test_readers_name_the_file_when_something_is_missing(tmp_path):
    path = tmp_path / "000.h5"
    with atomic_h5(path) as h5:
        write_track(h5, "a", {"mel": _mel(3)})
    with pytest.raises(StoreError, match="000.h5.*'b' is not in the store"):
        read_track_array(path, "b", "mel")
    with pytest.raises(StoreError, match="000.h5.*no array 'beat'"):
        read_track_array(path, "a", "beat")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        list_track_ids(tmp_path / "missing.h5")
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("hello")
    with pytest.raises(OSError, match="text.h5"):
        read_attrs(not_hdf5)



def test_same_content_gives_the_same_bytes_with_checksums(tmp_path):
    """Snakemake compares checksums of inputs: a rebuilt, unchanged store must be byte-identical."""
    for name in ("a.h5", "b.h5"):
        with atomic_h5(tmp_path / name, attrs={"fps": 50.0}) as h5:
            write_track(h5, "t", {"mel": _mel(40), "beat": np.ones(40, np.float32)}, compression="lzf")
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    with h5py.File(tmp_path / "a.h5", "r") as h5:
        assert h5.attrs["checksum"].startswith("blake2b:")
        assert h5["tracks/t/mel"].attrs["checksum"].startswith("blake2b:")
    assert read_attrs(tmp_path / "a.h5") == {"fps": 50.0}  # the checksum is not a setting


def test_store_arrays_read_frame_ranges_on_demand(tmp_path):
    mel = _mel(40)
    beat, downbeat = (np.arange(40) % 4 == 0).astype(np.float32), (np.arange(40) % 16 == 0).astype(np.float32)
    for shard, track_id in (("000", "a"), ("001", "b")):
        with atomic_h5(tmp_path / f"{shard}.h5") as h5:
            write_track(h5, track_id, {"mel": mel, "beat": beat, "downbeat": downbeat})
    paths = [tmp_path / "000.h5", tmp_path / "001.h5"]
    mels = StoreArrays(paths, ["mel"])
    assert list(mels) == ["a", "b"] and len(mels) == 2
    array = mels["b"]
    assert (array.shape, array.ndim, array.dtype, len(array)) == ((40, 8), 2, np.float16, 40)
    assert mels.nbytes == 2 * mel.nbytes
    crop = array[5:17]
    assert crop.dtype == np.float16
    np.testing.assert_array_equal(crop, mel[5:17])
    np.testing.assert_array_equal(np.asarray(array), mel)
    assert array[38:60].shape == (2, 8) and array[30:10].shape == (0, 8)
    with pytest.raises(TypeError):
        array[3]
    with atomic_h5(tmp_path / "lzf.h5") as h5:  # chunked + compressed: read through h5py
        write_track(h5, "c", {"mel": mel}, compression="lzf")
    np.testing.assert_array_equal(StoreArrays([tmp_path / "lzf.h5"], ["mel"])["c"][7:30], mel[7:30])
    targets = StoreArrays(paths, ["beat", "downbeat"], ["b"])
    assert list(targets) == ["b"] and targets["b"].shape == (40, 2) and targets["b"].dtype == np.float32
    np.testing.assert_array_equal(targets["b"][0:20], np.stack([beat, downbeat], axis=1)[0:20])


def test_store_arrays_refuse_missing_and_duplicate_tracks(tmp_path):
    for shard in ("000", "001"):
        with atomic_h5(tmp_path / f"{shard}.h5") as h5:
            write_track(h5, "same", {"mel": _mel(5)})
    paths = [tmp_path / "000.h5", tmp_path / "001.h5"]
    with pytest.raises(StoreError, match="two stores"):
        StoreArrays(paths, ["mel"])
    with pytest.raises(StoreError, match="none of the stores"):
        StoreArrays(paths[:1], ["mel"], ["same", "other"])
    with pytest.raises(StoreError, match="000.h5.*no array 'beat'"):
        StoreArrays(paths[:1], ["beat"])
