"""beatgrid.training.crnn: the CRNN trained from HDF5 stores, fold models, fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beatgrid.data.store import atomic_h5, read_store, write_track
from beatgrid.features import MelConfig, frame_targets
from beatgrid.data.folds import assign_folds
from tests.index_table import index_table
from beatgrid.models import load_model
from beatgrid.training.crnn import fold_train_ids, train_crnn
from beatgrid.training.stores import TrainingStores

N_MELS = 16
FPS = 50.0
CFG = {
    "conv_channels": [4], "rnn_hidden": 8, "rnn_layers": 1, "dropout": 0.0, "causal": False, "augment": False,
    "epochs": 2, "batch_size": 4, "crop_frames": 200, "lr": 0.01, "patience": 5, "seed": 0, "device": "cpu",
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Six clicky tracks with beats every 0.5 s in one mel store and one target store."""
    root = tmp_path_factory.mktemp("stores")
    rng = np.random.default_rng(0)
    mel_attrs = {**MelConfig(n_mels=N_MELS, fmax=8000).as_dict(), "fps": FPS}
    ids = [f"t{i}" for i in range(6)]
    with atomic_h5(root / "mels.h5", attrs=mel_attrs) as mels, atomic_h5(
        root / "targets.h5", attrs={"fps": FPS, "widen_frames": 1, "widen_value": 0.5}
    ) as targets:
        for i, track_id in enumerate(ids):
            n_frames = 500
            beats = np.arange(0.2 + 0.05 * i, n_frames / FPS, 0.5)
            downbeats = beats[::4]
            target = frame_targets(beats, downbeats, n_frames, FPS)
            mel = rng.normal(0, 0.1, (n_frames, N_MELS)) + 2.0 * target[:, :1]
            write_track(mels, track_id, {"mel": mel.astype(np.float16)})
            write_track(targets, track_id, {"beat": target[:, 0], "downbeat": target[:, 1],
                                            "beat_times": beats, "downbeat_times": downbeats})
    index_table(ids, ["train", "train", "train", "train", "val", "test"]).to_csv(root / "tracks.csv", index=False)
    return root


def _training(root):
    """The fixture's stores as what the CRNN trains on."""
    return TrainingStores([root / "mels.h5"], [root / "targets.h5"], root / "tracks.csv")


def test_fold_train_ids_leave_out_exactly_one_fold_dealt_over_the_whole_split(tmp_path):
    ids = [f"t{i}" for i in range(10)]
    index_table(ids, ["train"] * 9 + ["val"]).to_csv(tmp_path / "tracks.csv", index=False)
    fold_of = assign_folds(ids[:9], 3, 7)
    assert fold_train_ids(ids[:9], tmp_path / "tracks.csv", None, None) == ids[:9]
    for fold in range(3):
        kept = fold_train_ids(ids[:9], tmp_path / "tracks.csv", fold, 3, 7)
        assert set(kept) == {t for t in ids[:9] if fold_of[t] != fold}
        # a track a shard job dropped moves no other track's fold (the oof activations' deal)
        assert fold_train_ids(ids[1:9], tmp_path / "tracks.csv", fold, 3, 7) == [t for t in kept if t != "t0"]
    with pytest.raises(ValueError, match="fold"):
        fold_train_ids(ids[:9], tmp_path / "tracks.csv", 3, 3)


def test_fold_models_keep_a_group_together(tmp_path):
    ids = [f"t{i}" for i in range(8)]
    table = index_table(ids, ["train"] * 8).assign(group=["a", "a", "a", "", "", "", "", ""])
    table.to_csv(tmp_path / "tracks.csv", index=False)
    for fold in range(2):
        kept = set(fold_train_ids(ids, tmp_path / "tracks.csv", fold, 2, 0))
        assert {"t0", "t1", "t2"} <= kept or not {"t0", "t1", "t2"} & kept


def test_train_crnn_writes_a_self_contained_model(stores, tmp_path):
    torch.set_num_threads(1)
    result = train_crnn(_training(stores), CFG, tmp_path, progress=False)
    model, meta = load_model(tmp_path / "model.pt")
    assert meta["features"]["n_mels"] == N_MELS and meta["features"]["fps"] == FPS
    mels = read_store([stores / "mels.h5"], "mel")
    train_mels = np.concatenate([mels[t] for t in ("t0", "t1", "t2", "t3")]).astype(np.float64)
    np.testing.assert_allclose(model.input_norm()["mean"], train_mels.mean(axis=0), atol=1e-3)
    assert (tmp_path / "history.csv").is_file() and (tmp_path / "curves.png").is_file()
    assert len(result.history) == 2


def test_augment_takes_true_false_or_the_transforms_settings():
    from beatgrid.data.augment import MelAugment
    from beatgrid.training.crnn import mel_augment

    targets = {"widen_frames": 2, "widen_value": 0.25}
    assert mel_augment(False, targets) is None
    default = mel_augment(True, targets)
    assert default == MelAugment(widen_frames=2, widen_value=0.25)
    strong = mel_augment({"p_tempo": 0.9, "tempo_rate": [0.7, 1.4], "tilt_db": 12.0}, targets)
    assert strong == MelAugment(p_tempo=0.9, tempo_rate=(0.7, 1.4), tilt_db=12.0, widen_frames=2, widen_value=0.25)
    with pytest.raises(ValueError, match="p_temp"):
        mel_augment({"p_temp": 0.9}, targets)
    with pytest.raises(ValueError, match="widen_frames"):  # the labels' widening belongs to the targets
        mel_augment({"widen_frames": 3}, targets)


def test_the_augment_settings_reach_the_model_file(stores, tmp_path):
    torch.set_num_threads(1)
    train_crnn(_training(stores), {**CFG, "epochs": 1, "augment": {"p_tempo": 0.9, "p_noise": 0.0}}, tmp_path,
               progress=False)
    _, meta = load_model(tmp_path / "model.pt")
    assert meta["augment"]["p_tempo"] == 0.9 and meta["augment"]["p_noise"] == 0.0


def test_stores_over_the_memory_budget_train_the_same_model_on_demand(stores, tmp_path, caplog):
    """Crops read from the stores give the weights of the in-memory run. (With DataLoader
    workers the batches are the same too, tests/test_dataset.py, but batches in shared
    memory may take other float kernels: equal to about 1e-4, not bit for bit.)"""
    torch.set_num_threads(1)
    args = (_training(stores),)
    cfg = {**CFG, "augment": True, "num_workers": 0}
    train_crnn(*args, {**cfg, "memory_budget_gb": 1.0}, tmp_path / "memory", progress=False)
    with caplog.at_level("INFO", logger="beatgrid.data.dataset"):
        train_crnn(*args, {**cfg, "memory_budget_gb": 1e-9}, tmp_path / "on_demand", progress=False)
    assert "on demand" in caplog.text
    in_memory, _ = load_model(tmp_path / "memory" / "model.pt")
    on_demand, _ = load_model(tmp_path / "on_demand" / "model.pt")
    for (name, a), (_, b) in zip(in_memory.state_dict().items(), on_demand.state_dict().items()):
        assert torch.equal(a, b), name


def test_fine_tuning_keeps_the_pretrained_normalisation_and_refuses_other_mels(stores, tmp_path, caplog):
    torch.set_num_threads(1)
    train_crnn(_training(stores), CFG, tmp_path / "base", progress=False)
    base, _ = load_model(tmp_path / "base" / "model.pt")
    tuned_cfg = {**CFG, "init_from": str(tmp_path / "base" / "model.pt"), "conv_channels": [32], "epochs": 1}
    with caplog.at_level("WARNING", logger="beatgrid.models"):
        train_crnn(_training(stores), tuned_cfg, tmp_path / "tuned",
                   progress=False)
    tuned, meta = load_model(tmp_path / "tuned" / "model.pt")
    assert meta["model_config"]["conv_channels"] == [4]  # the pretrained sizes, not the config's
    # ... and the user is told which configured sizes were ignored, and how to get them
    ignored = [r.getMessage() for r in caplog.records if "keeps its own" in r.getMessage()]
    assert len(ignored) == 1 and "conv_channels [4] (config: [32])" in ignored[0], ignored
    assert "rnn_hidden" not in ignored[0] and "crnn.init_from: null" in ignored[0]
    assert tuned.input_norm() == base.input_norm()
    other = tmp_path / "other.pt"
    payload = torch.load(tmp_path / "base" / "model.pt", map_location="cpu", weights_only=False)
    payload["features"]["hop_length"] = 512
    torch.save(payload, other)
    with pytest.raises(ValueError, match="hop_length"):
        train_crnn(_training(stores), {**CFG, "init_from": str(other)},
                   tmp_path / "bad", progress=False)


def test_init_from_takes_a_models_folder_or_a_shipped_name(stores, tmp_path, monkeypatch):
    import beatgrid.pretrained as pretrained

    torch.set_num_threads(1)
    args = (_training(stores),)
    train_crnn(*args, {**CFG, "epochs": 1}, tmp_path / "shipped" / "mine" / "crnn", progress=False)
    base, _ = load_model(tmp_path / "shipped" / "mine" / "crnn" / "model.pt")
    monkeypatch.setattr(pretrained, "_package_root", lambda: tmp_path / "shipped")
    for i, spec in enumerate((tmp_path / "shipped" / "mine", "pretrained:mine")):
        tuned_cfg = {**CFG, "init_from": str(spec), "conv_channels": [32], "epochs": 1, "lr": 1e-9}
        train_crnn(*args, tuned_cfg, tmp_path / f"tuned{i}", progress=False)
        tuned, meta = load_model(tmp_path / f"tuned{i}" / "model.pt")
        assert meta["model_config"]["conv_channels"] == [4], spec
        tuned_weights = dict(tuned.named_parameters())
        for name, weight in base.named_parameters():  # lr ~0: the shipped weights, unchanged
            np.testing.assert_allclose(tuned_weights[name].detach(), weight.detach(), atol=1e-6, err_msg=f"{spec} {name}")
    with pytest.raises(pretrained.PretrainedModelError, match="shipped: mine"):
        train_crnn(*args, {**CFG, "init_from": "pretrained:nope"}, tmp_path / "bad", progress=False)


def test_cli_train_crnn_uses_the_config_block(stores, tmp_path):
    import yaml

    from beatgrid.cli import main

    torch.set_num_threads(1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"crnn": {**CFG, "epochs": 1}}))
    rc = main(["train-crnn", "--mels", str(stores / "mels.h5"), "--targets", str(stores / "targets.h5"),
               "--tracks", str(stores / "tracks.csv"), "--out", str(tmp_path / "m"), "--config", str(tmp_path / "c.yaml")])
    assert rc == 0
    _, meta = load_model(tmp_path / "m" / "model.pt")
    assert meta["model_config"]["conv_channels"] == [4] and meta["train_config"]["epochs"] == 1
    assert main(["train-crnn", "--mels", str(stores / "mels.h5"), "--targets", str(stores / "targets.h5"),
                 "--tracks", str(stores / "tracks.csv"), "--out", str(tmp_path / "x"), "--config", str(tmp_path / "none.yaml")]) == 2
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"crnn": {**CFG, "epoch": 1}}))  # a misspelt key
    assert main(["train-crnn", "--mels", str(stores / "mels.h5"), "--targets", str(stores / "targets.h5"),
                 "--tracks", str(stores / "tracks.csv"), "--out", str(tmp_path / "y"), "--config", str(tmp_path / "typo.yaml")]) == 2
    assert not (tmp_path / "y").exists()
