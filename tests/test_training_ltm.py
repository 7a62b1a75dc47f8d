"""LTM training glue: folds, datasets from the stores, and that the trained LTM helps."""

import mir_eval
import numpy as np
import pandas as pd
import pytest
import torch

from beatgrid.data.activation_augment import simulate_activations
from beatgrid.data.augment import render_targets
from beatgrid.data.store import atomic_h5, write_track
from beatgrid.training.ltm import train_ltm
from beatgrid.training.stores import TrainingStores
from beatgrid.models import load_model
from beatgrid.models.ltm import TemporalConvNet
from beatgrid.decoding.streaming import track_online
from tests.index_table import index_table

torch.set_num_threads(1)
FPS = 50.0
DURATION_S = 20.0
#: A CRNN on unseen music: weaker peaks, missed beats, off-beat and random false peaks.
NOISY = dict(
    confidence=(0.4, 1.0), miss_rate=0.2, offbeat_rate=0.25, spurious_per_s=0.5, jitter_s=0.02,
    downbeat_miss_rate=0.3, downbeat_confusion_rate=0.2, noise_std=0.04,
)
#: An ltm: block for a small, quick model. Learning the metre (suppressing off-beat peaks,
#: filling missed beats) takes some hundreds of steps; early epochs only rescale the input.
CFG = dict(
    kind="tcn", channels=16, kernel_size=5, n_layers=6, dropout=0.1, input_source="oof",
    epochs=40, batch_size=4, crop_frames=500, lr=0.003, weight_decay=1e-4, warmup_epochs=1,
    grad_clip=1.0, patience=40, seed=0, device="cpu", amp=False,
)


def _beats(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    period = 60.0 / rng.uniform(80, 160)
    beats = np.arange(rng.uniform(0, period), DURATION_S - 0.1, period)
    beats += rng.normal(0, 0.005, len(beats))
    return beats, beats[int(rng.integers(0, 4)) :: 4]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Activation + target stores and tracks.csv: 24 train, 6 val, 10 test tracks of 20 s."""
    root = tmp_path_factory.mktemp("ltm_stores")
    rng = np.random.default_rng(0)
    n_frames = int(DURATION_S * FPS)
    rows, truth, activations = [], {}, {}
    for split, count in (("train", 24), ("val", 6), ("test", 10)):
        for i in range(count):
            track_id = f"{split}{i:02d}"
            truth[track_id] = _beats(rng)
            activations[track_id] = simulate_activations(*truth[track_id], n_frames, FPS, rng, **NOISY)
            rows.append({"track_id": track_id, "split": split, "shard": "000"})
    with atomic_h5(root / "activations.h5", attrs={"fps": FPS}) as h5:
        for track_id, act in activations.items():
            write_track(h5, track_id, {"activations": act})
    with atomic_h5(root / "targets.h5", attrs={"fps": FPS, "widen_frames": 1, "widen_value": 0.5}) as h5:
        for track_id, (beats, downbeats) in truth.items():
            frames = {name: np.round(times * FPS).astype(int) for name, times in (("beat", beats), ("downbeat", downbeats))}
            write_track(h5, track_id, {name: render_targets(f, n_frames) for name, f in frames.items()},
                        attrs={"has_downbeats": True})
    index_table([r["track_id"] for r in rows], [r["split"] for r in rows]).to_csv(root / "tracks.csv", index=False)
    return root, truth, activations


def _train(stores, out_dir, **overrides):
    root = stores[0]
    return train_ltm(TrainingStores([root / "activations.h5"], [root / "targets.h5"], root / "tracks.csv"),
                     {**CFG, **overrides}, out_dir, progress=False)


def test_trained_ltm_beats_raw_peak_picking(stores, tmp_path):
    """On held-out tracks, the online tracker over the LTM finds beats better than the same
    causal peak picking over the raw activations."""
    _, truth, activations = stores
    result = _train(stores, tmp_path)
    model, meta = load_model(result.model_path)
    assert isinstance(model, TemporalConvNet)
    assert meta["kind"] == "tcn" and meta["features"]["fps"] == FPS and meta["input_source"] == "oof"
    assert meta["augment"] is None
    assert (tmp_path / "history.csv").exists() and (tmp_path / "curves.png").exists()
    test_ids = [t for t in truth if t.startswith("test")]
    raw_f = np.mean([mir_eval.beat.f_measure(truth[t][0], track_online(None, activations[t], FPS)[0])
                     for t in test_ids])
    ltm_f = np.mean([mir_eval.beat.f_measure(truth[t][0], track_online(model, activations[t], FPS)[0])
                     for t in test_ids])
    assert ltm_f > raw_f + 0.08, (ltm_f, raw_f)


def test_augment_input_source_is_recorded(stores, tmp_path):
    result = _train(stores, tmp_path, input_source="augment", epochs=1)
    _, meta = load_model(result.model_path)
    assert meta["input_source"] == "augment"
    assert meta["augment"]["fps"] == FPS and meta["augment"]["p_dropout"] > 0


def test_gru_kind(stores, tmp_path):
    result = _train(stores, tmp_path, kind="gru", gru_hidden=8, epochs=1)
    model, meta = load_model(result.model_path)
    assert meta["kind"] == "gru" and model.gru.hidden_size == 8


def test_init_from_fine_tunes_a_models_folder_a_shipped_name_or_a_file(stores, tmp_path, monkeypatch, caplog):
    import beatgrid.pretrained as pretrained

    base_dir = tmp_path / "shipped" / "mine"
    _train(stores, base_dir / "ltm", kind="gru", gru_hidden=8, epochs=1)
    base, _ = load_model(base_dir / "ltm" / "model.pt")
    (base_dir / "crnn").mkdir()
    (base_dir / "crnn" / "model.pt").touch()  # a shipped model is a CRNN + LTM pair
    monkeypatch.setattr(pretrained, "_package_root", lambda: tmp_path / "shipped")
    for i, spec in enumerate((base_dir, "pretrained:mine", base_dir / "ltm" / "model.pt")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="beatgrid.models"):
            result = _train(stores, tmp_path / f"tuned{i}", init_from=str(spec), epochs=1, lr=1e-9)
        tuned, meta = load_model(result.model_path)
        assert meta["kind"] == "gru" and tuned.gru.hidden_size == 8, spec  # its sizes, not the block's tcn
        assert any("keeps its own kind gru (config: tcn)" in r.getMessage() for r in caplog.records), spec
        tuned_weights = dict(tuned.named_parameters())
        for name, weight in base.named_parameters():  # lr ~0: the shipped weights, unchanged
            np.testing.assert_allclose(tuned_weights[name].detach(), weight.detach(), atol=1e-6, err_msg=f"{spec} {name}")
    other = tmp_path / "other.pt"
    payload = torch.load(base_dir / "ltm" / "model.pt", map_location="cpu", weights_only=False)
    payload["features"]["fps"] = 100.0
    torch.save(payload, other)
    with pytest.raises(ValueError, match="100.0 fps"):
        _train(stores, tmp_path / "bad", init_from=str(other))


def test_bad_inputs_are_named(stores, tmp_path):
    root = stores[0]
    with pytest.raises(ValueError, match="input_source"):
        _train(stores, tmp_path, input_source="crnn")
    only_test = root / "only_test.csv"
    pd.read_csv(root / "tracks.csv").assign(split="test").to_csv(only_test, index=False)
    with pytest.raises(ValueError, match="no track has split 'train'"):
        train_ltm(TrainingStores([root / "activations.h5"], [root / "targets.h5"], only_test), CFG, tmp_path)
    no_fps = tmp_path / "no_fps.h5"
    with atomic_h5(no_fps):
        pass
    with pytest.raises(ValueError, match="fps"):
        train_ltm(TrainingStores([no_fps], [root / "targets.h5"], root / "tracks.csv"), CFG, tmp_path)
