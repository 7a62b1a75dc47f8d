"""Model registry, model.pt round trip, and the masked losses."""

import os

import numpy as np
import pytest
import torch

from beatgrid.models import (MODEL_REGISTRY, ModelFileError, build_model, load_model,
                             register_model, save_model)
from beatgrid.models.crnn import CRNN
from beatgrid.models.losses import (MaskedBCELoss, ShiftTolerantBCELoss, estimate_pos_weight,
                                    make_loss)

torch.set_num_threads(1)

CRNN_BLOCK = {  # a crnn: config block, training keys included
    "causal": False, "conv_channels": [4, 8], "rnn_hidden": 8, "rnn_layers": 1,
    "dropout": 0.1, "epochs": 3, "lr": 0.01, "device": "auto", "n_mels": 16,
}


# ---------------------------------------------------------------- registry
def test_build_model_takes_a_whole_config_block():
    model = build_model("crnn", CRNN_BLOCK)
    assert isinstance(model, CRNN)
    assert model.config["conv_channels"] == [4, 8] and model.n_mels == 16
    assert model.model_kind == "crnn"
    assert "lr" not in model.model_config and model.model_config["rnn_hidden"] == 8


def test_ltm_kinds_are_registered():
    for kind in ("tcn", "gru"):
        model = build_model(kind, {"dropout": 0.0})
        out = model(torch.rand(1, 20, 2))
        assert out.shape == (1, 20, 2)


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ValueError, match="crnn"):
        build_model("transformer", {})


def test_register_model_with_one_line():
    class Tiny(torch.nn.Module):
        def __init__(self, width: int = 2):
            super().__init__()
            self.linear = torch.nn.Linear(2, width)

    register_model("tiny-test", Tiny)
    try:
        assert build_model("tiny-test", {"width": 2, "epochs": 5}).linear.out_features == 2
    finally:
        del MODEL_REGISTRY["tiny-test"]


# ---------------------------------------------------------------- model.pt
def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.mark.parametrize("causal", [False, True])
def test_save_load_round_trip_gives_identical_outputs(tmp_path, causal):
    model = _trained_like(build_model("crnn", {**CRNN_BLOCK, "causal": causal}))
    model.set_input_norm(np.linspace(0, 1, 16), np.linspace(1, 2, 16))
    model.eval()
    features = {"sr": 22050, "hop_length": 441, "n_mels": 16, "fps": 50.0}
    save_model(tmp_path / "model.pt", model,
               {"features": features, "train_config": {"lr": np.float32(0.01)},
                "best_epoch": 3, "val_metrics": {"val_beat_f": np.float64(0.9)}})
    loaded, meta = load_model(tmp_path / "model.pt")
    x = torch.rand(2, 60, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert not loaded.training
    assert meta["kind"] == "crnn" and meta["model_config"]["causal"] is causal
    assert meta["features"]["fps"] == 50.0 and meta["best_epoch"] == 3
    assert meta["input_norm"]["mean"][-1] == pytest.approx(1.0)
    assert isinstance(meta["train_config"]["lr"], float)  # numpy made plain
    assert {"state_dict"}.isdisjoint(meta) and meta["beatgrid_version"]


def test_save_is_atomic(tmp_path, monkeypatch):
    model = build_model("crnn", CRNN_BLOCK)
    path = tmp_path / "model.pt"
    save_model(path, model)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", broken_save)
        with pytest.raises(OSError, match="disk full"):
            save_model(path, _trained_like(model))
    assert path.read_bytes() == before

    def full_disk(fd):
        raise OSError("disk full")

    with monkeypatch.context() as patch:  # the disk fills while the file is written
        patch.setattr(os, "fsync", full_disk)
        with pytest.raises(OSError, match="disk full"):
            save_model(path, _trained_like(model))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # no temporary left behind


def test_same_model_saved_twice_gives_identical_bytes(tmp_path):
    """Snakemake compares checksums: an unchanged model must not get new bytes."""
    model = _trained_like(build_model("crnn", CRNN_BLOCK))
    save_model(tmp_path / "a" / "model.pt", model, {"best_epoch": 2})
    save_model(tmp_path / "b" / "model.pt", model, {"best_epoch": 2})
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()


def test_save_needs_kind_and_config(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        save_model(tmp_path / "m.pt", CRNN(n_mels=8, conv_channels=(2,)))
    save_model(tmp_path / "m.pt", CRNN(n_mels=8, conv_channels=(2,)),
               {"kind": "crnn", "model_config": {"n_mels": 8, "conv_channels": [2]}})
    assert load_model(tmp_path / "m.pt")[0].n_mels == 8


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.pt"):
        load_model(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ModelFileError, match="other.pt.*missing"):
        load_model(other)
    wrong = tmp_path / "wrong.pt"
    save_model(wrong, build_model("crnn", CRNN_BLOCK))
    payload = torch.load(wrong, weights_only=True)
    payload["model_config"]["rnn_hidden"] = 9  # weights no longer fit
    torch.save(payload, wrong)
    with pytest.raises(ModelFileError, match="wrong.pt"):
        load_model(wrong)


# ---------------------------------------------------------------- losses
def _batch(seed=0, n=3, t=40):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, t, 2, generator=gen, requires_grad=True)
    targets = torch.zeros(n, t, 2)
    targets[:, ::10, 0] = 1.0
    targets[:, 1::10, 0] = 0.5
    targets[:, ::20, 1] = 1.0
    return logits, targets


@pytest.mark.parametrize("loss_fn", [MaskedBCELoss([2.0, 5.0]), ShiftTolerantBCELoss([2.0, 5.0], 2)])
def test_padding_changes_neither_loss_nor_gradients(loss_fn):
    logits, targets = _batch()
    lengths = torch.tensor([40, 25, 9])
    loss = loss_fn(logits, targets, lengths)
    loss.backward()
    grad = logits.grad.clone()

    junk_logits = logits.detach().clone()
    junk_targets = targets.clone()
    for row, n in enumerate(lengths.tolist()):
        junk_logits[row, n:] = torch.randn(40 - n, 2) * 50
        junk_logits[row, n:n + 1] = float("nan")
        junk_targets[row, n:] = torch.rand(40 - n, 2)
    junk_logits.requires_grad_(True)
    junk_loss = loss_fn(junk_logits, junk_targets, lengths)
    junk_loss.backward()
    assert torch.equal(junk_loss, loss)
    torch.testing.assert_close(junk_logits.grad, grad, rtol=0, atol=0)
    for row, n in enumerate(lengths.tolist()):
        assert not junk_logits.grad[row, n:].any()


def test_masked_bce_matches_torch_on_valid_frames():
    logits, targets = _batch()
    lengths = torch.tensor([40, 25, 9])
    weight = torch.tensor([2.0, 5.0])
    ours = MaskedBCELoss(weight)(logits, targets, lengths)
    per_output = []
    for c in range(2):
        flat_logits = torch.cat([logits[r, :n, c] for r, n in enumerate(lengths.tolist())])
        flat_targets = torch.cat([targets[r, :n, c] for r, n in enumerate(lengths.tolist())])
        per_output.append(torch.nn.functional.binary_cross_entropy_with_logits(
            flat_logits, flat_targets, pos_weight=weight[c]))
    torch.testing.assert_close(ours, torch.stack(per_output).mean())


def test_output_mask_switches_off_one_output_of_one_row():
    logits, targets = _batch()
    lengths = torch.tensor([40, 40, 40])
    mask = torch.ones(3, 2)
    mask[1, 1] = 0.0
    loss = MaskedBCELoss()(logits, targets, lengths, mask)
    loss.backward()
    assert not logits.grad[1, :, 1].any()
    assert logits.grad[1, :, 0].any() and logits.grad[0, :, 1].any()


def test_shift_tolerant_loss_forgives_small_shifts_only():
    targets = torch.zeros(1, 60, 1)
    targets[0, 30, 0] = 1.0
    lengths = torch.tensor([60])

    def peak_at(frame):
        logits = torch.full((1, 60, 1), -8.0)
        logits[0, frame, 0] = 8.0
        return logits

    tolerant, plain = ShiftTolerantBCELoss(1.0, 3), MaskedBCELoss(1.0)
    exact, shifted, far = (tolerant(peak_at(f), targets, lengths) for f in (30, 32, 40))
    assert shifted == pytest.approx(float(exact), abs=1e-4)
    assert far > exact + 0.1
    assert plain(peak_at(32), targets, lengths) > plain(peak_at(30), targets, lengths) + 0.1


def test_estimate_pos_weight_counts_soft_targets():
    t = np.zeros((100, 2), np.float32)
    t[::10, 0] = 1.0
    t[1::10, 0] = 0.5  # 10 + 5 positives, 85 negatives
    t[::50, 1] = 1.0   # 2 positives, 98 negatives
    weight = estimate_pos_weight([t[:50], t[50:]])
    assert weight == pytest.approx([85 / 15, 98 / 2])
    assert estimate_pos_weight([np.zeros((10, 2))]) == pytest.approx([1.0, 1.0])


def test_make_loss_rejects_unknown_names():
    assert isinstance(make_loss("shift_tolerant", 2.0, 3), ShiftTolerantBCELoss)
    with pytest.raises(ValueError, match="focal"):
        make_loss("focal")
