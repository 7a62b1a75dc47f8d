"""Activations of whole tracks: lengths, chunked == one pass, and the per-shard stores (CRNN, out-of-fold, LTM)."""

import h5py
import numpy as np
import pytest
import torch

from beatgrid.activations import (chunk_bounds, compute_activations, extract_ltm_shard, extract_oof_shard,
                                  extract_shard_activations, file_sha256)
from beatgrid.data.folds import assign_folds
from beatgrid.data.store import atomic_h5, read_store, write_track
from beatgrid.decoding.streaming import ltm_probabilities
from beatgrid.models import build_model, load_model, save_model
from tests.index_table import index_table

torch.set_num_threads(1)

N_MELS = 16
SMALL = dict(n_mels=N_MELS, conv_channels=[4, 8], rnn_hidden=8, rnn_layers=2, dropout=0.0)
FEATURES = {"sr": 22050, "hop_length": 441, "n_fft": 1024, "n_mels": N_MELS, "fmin": 30.0,
            "fmax": 11000.0, "fps": 50.0}


def _model(causal=False, seed=0):
    torch.manual_seed(seed)
    return build_model("crnn", {**SMALL, "causal": causal}).eval()


def _mel(n_frames, seed=0):
    return np.random.default_rng(seed).gamma(2.0, 0.5, (n_frames, N_MELS)).astype(np.float32)


@pytest.mark.parametrize("n_frames, chunk, overlap", [
    (1, 10, 2), (10, 10, 2), (11, 10, 2), (100, 10, 2), (101, 30, 5), (57, 21, 10), (1000, 300, 50)])
def test_chunks_tile_the_track_with_context(n_frames, chunk, overlap):
    bounds = chunk_bounds(n_frames, chunk, overlap)
    kept = np.concatenate([np.arange(k0, k1) for _, _, k0, k1 in bounds])
    np.testing.assert_array_equal(kept, np.arange(n_frames))
    for start, stop, keep_start, keep_stop in bounds:
        assert 0 <= start <= keep_start < keep_stop <= stop <= n_frames
        assert stop - start <= chunk
        assert keep_start - start >= min(overlap, keep_start)
        assert stop - keep_stop >= min(overlap, n_frames - keep_stop)


def test_chunk_must_exceed_twice_the_overlap():
    with pytest.raises(ValueError, match="overlap"):
        chunk_bounds(100, 20, 10)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_frames", [1, 37, 1234])
def test_activation_length_equals_mel_length(causal, n_frames):
    act = compute_activations(_model(causal), _mel(n_frames), chunk_frames=500, overlap_frames=100)
    assert act.shape == (n_frames, 2) and act.dtype == np.float32
    assert np.all((act >= 0) & (act <= 1))


def test_chunked_bilstm_equals_one_pass():
    model = _model()
    mel = _mel(3000)
    one_pass = compute_activations(model, mel, chunk_frames=10_000, overlap_frames=0)
    chunked = compute_activations(model, mel, chunk_frames=700, overlap_frames=150)
    np.testing.assert_allclose(chunked, one_pass, atol=1e-4, rtol=0)
    # the overlap is what makes it equal: without context the chunk edges differ
    no_overlap = compute_activations(model, mel, chunk_frames=700, overlap_frames=0)
    assert np.abs(no_overlap - one_pass).max() > 1e-3


def test_chunked_causal_equals_one_pass_exactly():
    model = _model(causal=True)
    mel = _mel(2000)
    with torch.no_grad():
        one_pass = torch.sigmoid(model(torch.from_numpy(mel)[None]))[0].numpy()
    chunked = compute_activations(model, mel, chunk_frames=333, overlap_frames=0)
    np.testing.assert_allclose(chunked, one_pass, atol=1e-6, rtol=0)


def _mel_store(path, tracks, attrs=None):
    with atomic_h5(path, {**FEATURES, **(attrs or {})}) as h5:
        for track_id, mel in tracks.items():
            write_track(h5, track_id, {"mel": mel.astype(np.float16)})


def test_extract_shard_writes_every_track_with_the_model_identity(tmp_path):
    model = _model()
    save_model(tmp_path / "model.pt", model, {"features": FEATURES})
    tracks = {"a": _mel(120, 1), "b": _mel(75, 2)}
    _mel_store(tmp_path / "000.h5", tracks)
    n = extract_shard_activations(tmp_path / "model.pt", tmp_path / "000.h5",
                                  tmp_path / "act" / "000.h5", device="cpu", progress=False)
    assert n == 2
    loaded, _ = load_model(tmp_path / "model.pt")
    with h5py.File(tmp_path / "act" / "000.h5", "r") as h5:
        assert h5.attrs["fps"] == 50.0 and h5.attrs["model_kind"] == "crnn"
        assert h5.attrs["model_sha256"] == file_sha256(tmp_path / "model.pt")
        assert sorted(h5["tracks"]) == ["a", "b"]
        for track_id, mel in tracks.items():
            stored = h5[f"tracks/{track_id}/activations"][()]
            assert stored.dtype == np.float32 and stored.shape == (len(mel), 2)
            expected = compute_activations(loaded, mel.astype(np.float16))
            np.testing.assert_array_equal(stored, expected)


@pytest.mark.parametrize("meta, stored", [({"pos_weight": [13.5, 48.0]}, [13.5, 48.0]),
                                          ({"pos_weight": None}, [1.0, 1.0]),  # trained unweighted
                                          ({}, None)])  # a model file from before the key
def test_extract_shard_keeps_the_training_pos_weight(tmp_path, meta, stored):
    save_model(tmp_path / "model.pt", _model(), {"features": FEATURES, **meta})
    _mel_store(tmp_path / "000.h5", {"a": _mel(50)})
    extract_shard_activations(tmp_path / "model.pt", tmp_path / "000.h5", tmp_path / "act.h5",
                              device="cpu", progress=False)
    with h5py.File(tmp_path / "act.h5", "r") as h5:
        if stored is None:
            assert "pos_weight" not in h5.attrs
        else:
            np.testing.assert_allclose(h5.attrs["pos_weight"], stored)


def test_extract_an_empty_shard_gives_a_valid_store(tmp_path):
    save_model(tmp_path / "model.pt", _model(), {"features": FEATURES})
    _mel_store(tmp_path / "001.h5", {})
    assert extract_shard_activations(tmp_path / "model.pt", tmp_path / "001.h5",
                                     tmp_path / "out.h5", progress=False) == 0
    with h5py.File(tmp_path / "out.h5", "r") as h5:
        assert len(h5["tracks"]) == 0 and "model_sha256" in h5.attrs


def test_extract_refuses_mels_the_model_was_not_trained_on(tmp_path):
    save_model(tmp_path / "model.pt", _model(), {"features": FEATURES})
    _mel_store(tmp_path / "fps.h5", {"a": _mel(50)}, {"fps": 100.0, "hop_length": 220})
    with pytest.raises(ValueError, match="fps.h5.*fps"):
        extract_shard_activations(tmp_path / "model.pt", tmp_path / "fps.h5", tmp_path / "o1.h5",
                                  progress=False)
    with atomic_h5(tmp_path / "bands.h5", {**FEATURES, "n_mels": 8}) as h5:
        write_track(h5, "a", {"mel": np.zeros((50, 8), np.float16)})
    with pytest.raises(ValueError, match="bands.h5"):
        extract_shard_activations(tmp_path / "model.pt", tmp_path / "bands.h5", tmp_path / "o2.h5",
                                  progress=False)
    assert not (tmp_path / "o1.h5").exists() and not (tmp_path / "o2.h5").exists()


def test_out_of_fold_activations_come_from_the_model_that_did_not_see_the_track(tmp_path):
    main, *fold_paths = paths = [tmp_path / name / "model.pt" for name in ("main", "fold0", "fold1")]
    for seed, path in enumerate(paths):  # three different models
        path.parent.mkdir()
        save_model(path, _model(seed=seed), {"features": FEATURES})
    tracks = {f"t{i}": _mel(60, i) for i in range(6)}
    _mel_store(tmp_path / "mels.h5", tracks)
    index_table(list(tracks), ["train"] * 4 + ["val", "test"]).to_csv(tmp_path / "tracks.csv", index=False)
    extract_oof_shard(main, fold_paths, tmp_path / "mels.h5", tmp_path / "tracks.csv", tmp_path / "oof.h5",
                      folds=2, device="cpu", progress=False)
    oof = read_store([tmp_path / "oof.h5"], "activations")
    fold_of = assign_folds(["t0", "t1", "t2", "t3"], 2, 0)
    for track_id, mel in tracks.items():
        path = fold_paths[fold_of[track_id]] if track_id in fold_of else main
        expected = compute_activations(load_model(path)[0], mel.astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(oof[track_id], expected, atol=1e-6, err_msg=track_id)
    assert set(oof) == set(tracks)
    with pytest.raises(ValueError, match="expected 2 fold models"):
        extract_oof_shard(main, fold_paths[:1], tmp_path / "mels.h5", tmp_path / "tracks.csv", tmp_path / "x.h5",
                          folds=2, device="cpu", progress=False)


def test_ltm_shard_holds_the_ltm_pass_over_every_crnn_track(tmp_path):
    torch.manual_seed(0)
    ltm = build_model("tcn", {"channels": 8, "n_layers": 2, "dropout": 0.0})
    save_model(tmp_path / "ltm.pt", ltm, {"features": {"fps": 50.0}})
    crnn = {"a": np.random.default_rng(1).random((80, 2)).astype(np.float32),
            "b": np.random.default_rng(2).random((33, 2)).astype(np.float32)}
    with atomic_h5(tmp_path / "crnn.h5", {"fps": 50.0, "model_kind": "crnn"}) as h5:
        for track_id, activations in crnn.items():
            write_track(h5, track_id, {"activations": activations})
    extract_ltm_shard(tmp_path / "ltm.pt", tmp_path / "crnn.h5", tmp_path / "ltm.h5", progress=False)
    loaded, _ = load_model(tmp_path / "ltm.pt")
    stored = read_store([tmp_path / "ltm.h5"], "activations")
    assert set(stored) == set(crnn)
    for track_id, activations in crnn.items():
        np.testing.assert_allclose(stored[track_id], ltm_probabilities(loaded, activations), atol=1e-6)
    with h5py.File(tmp_path / "ltm.h5", "r") as h5:
        assert h5.attrs["fps"] == 50.0 and h5.attrs["model_kind"] == "tcn"
        assert h5.attrs["model_sha256"] == file_sha256(tmp_path / "ltm.pt")


def test_track_activations_file_round_trip(tmp_path):
    from beatgrid.activations import load_track_activations, save_track_activations

    activations = np.random.default_rng(0).random((321, 2), dtype=np.float32)
    path = save_track_activations(tmp_path / "song.wav.activations.npz", activations, 50.0, [12.5, 48.0])
    assert path.name == "song.wav.activations.npz"  # numpy adds no second .npz
    loaded, fps, pos_weight = load_track_activations(path)
    np.testing.assert_array_equal(loaded, activations)
    assert fps == 50.0 and pos_weight == [12.5, 48.0]
    save_track_activations(path, activations, 50.0)
    assert load_track_activations(path)[2] is None
