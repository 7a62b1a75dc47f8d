"""The shared trainer: it learns, it is reproducible, it resumes, and it writes its files."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from beatgrid.data.dataset import FrameDataset, MelNormalizer
from beatgrid.models import MODEL_FILE_KEYS, build_model, load_model
from beatgrid.targets import render_targets
from beatgrid.training import (HISTORY_COLUMNS, TrainConfig, evaluate, lr_factor, selection_score,
                               seed_everything, train)

torch.set_num_threads(1)

FPS = 50.0
N_MELS = 32
TINY = dict(n_mels=N_MELS, conv_channels=[8, 16], rnn_hidden=16, rnn_layers=1, dropout=0.0)


def click_track(seed: int, n_frames: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Mel-like gamma noise with a decaying broadband click on every beat (louder in the
    low bands on downbeats, 4 beats a bar), tempo 100-150 BPM; targets [T, 2] widened
    by one frame at 0.5."""
    rng = np.random.default_rng(seed)
    period = 60 * FPS / rng.uniform(100, 150)
    beats = np.round(np.arange(rng.uniform(0, period), n_frames - 1, period)).astype(int)
    downbeats = beats[::4]
    mel = rng.gamma(2.0, 0.3, size=(n_frames, N_MELS)).astype(np.float32)
    tilt = np.linspace(0.5, 1.0, N_MELS)
    for lag, amplitude in enumerate((3.0, 1.5, 0.7)):
        frames = beats + lag
        ok = frames < n_frames
        mel[frames[ok]] += amplitude * tilt
        down = downbeats + lag
        mel[down[down < n_frames]] += amplitude * tilt[::-1]
    targets = np.stack([render_targets(beats, n_frames), render_targets(downbeats, n_frames)], 1)
    return mel, targets


def _data(n_tracks=4, n_frames=1000, first_seed=0):
    ids = [f"track{first_seed + i}" for i in range(n_tracks)]
    pairs = [click_track(first_seed + i, n_frames) for i in range(n_tracks)]
    return ids, {t: p[0] for t, p in zip(ids, pairs)}, {t: p[1] for t, p in zip(ids, pairs)}


def _model(seed=0, **overrides):
    seed_everything(seed)
    return build_model("crnn", {**TINY, **overrides})


def _cfg(**overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=4, crop_frames=200, lr=5e-3, warmup_epochs=0.5,
                  patience=100, device="cpu")
    return TrainConfig(**{**values, **overrides})


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_overfits_a_handful_of_tracks(tmp_path):
    ids, mels, targets = _data()
    model = _model()
    norm = MelNormalizer.fit(mels.values())
    model.set_input_norm(norm.mean, norm.std)
    train_set = FrameDataset(mels, targets, ids, crop_frames=200, crops_per_track=4)
    val_set = FrameDataset(mels, targets, ids)
    before = evaluate(model, val_set, FPS)
    result = train(model, train_set, val_set, _cfg(epochs=12, lr=2e-2), tmp_path, val_fps=FPS,
                   progress=False)

    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert len(history) == 12 and history["epoch"].tolist() == list(range(1, 13))
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]
    assert (history["frames_per_s"] > 0).all()
    assert before["beat_f"] < 0.8
    assert result.best_metrics["val_beat_f"] > 0.9
    after = evaluate(model, val_set, FPS)  # the model holds the best epoch's weights
    assert after["beat_f"] == pytest.approx(result.best_metrics["val_beat_f"])
    assert after["downbeat_f"] > 0.5
    for name in ("model.pt", "checkpoint.pt", "curves.png", "history.csv"):
        assert (tmp_path / name).stat().st_size > 0
    loaded, meta = load_model(tmp_path / "model.pt")
    assert set(MODEL_FILE_KEYS) - {"state_dict"} <= set(meta)  # load_model's meta leaves the weights out
    assert meta["best_epoch"] == result.best_epoch
    assert meta["val_metrics"]["val_beat_f"] == pytest.approx(result.best_metrics["val_beat_f"])
    assert meta["features"]["fps"] == FPS and meta["train_config"]["epochs"] == 12
    assert meta["input_norm"]["mean"] == pytest.approx(norm.mean.tolist())
    # the loss's positive weights travel with the model, for decoders to undo them
    assert len(result.pos_weight) == 2 and min(result.pos_weight) > 1.0
    assert meta["pos_weight"] == pytest.approx(result.pos_weight)


def _run(tmp_path, epochs=2, on_epoch_end=None, data_seed=0, beat_shift_frames=0, **cfg):
    ids, mels, targets = _data(n_tracks=3, n_frames=300)
    if data_seed:  # same track ids, other content
        mels[ids[0]] = click_track(100 + data_seed, 300)[0]
    if beat_shift_frames:  # one training track's annotation moved (6 frames = 120 ms at 50 fps)
        shifted = np.roll(targets[ids[2]], beat_shift_frames, axis=0)
        assert shifted.shape == targets[ids[2]].shape and shifted.sum() == targets[ids[2]].sum()
        targets[ids[2]] = shifted
    model = _model(dropout=0.2)  # dropout: the torch RNG must be restored on resume too
    train_set = FrameDataset(mels, targets, ids, crop_frames=120, crops_per_track=2, seed=3)
    val_set = FrameDataset(mels, targets, ids[:2])
    result = train(model, train_set, val_set, _cfg(epochs=epochs, **cfg), tmp_path,
                   val_fps=FPS, progress=False, on_epoch_end=on_epoch_end)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    return result, checkpoint["model"]


def test_two_runs_give_identical_weights(tmp_path):
    _, first = _run(tmp_path / "a")
    _, second = _run(tmp_path / "b")
    assert _same_weights(first, second)
    _, other_seed = _run(tmp_path / "c", seed=1)
    assert not _same_weights(first, other_seed)


class Killed(Exception):
    pass


def _kill_after(epoch):
    def hook(done, row):
        if done == epoch:
            raise Killed
    return hook


def test_resume_after_a_kill_gives_the_uninterrupted_weights(tmp_path):
    _, uninterrupted = _run(tmp_path / "full", epochs=3)
    with pytest.raises(Killed):
        _run(tmp_path / "killed", epochs=3, on_epoch_end=_kill_after(1))
    assert not (tmp_path / "killed" / "model.pt").exists()  # only a finished training writes it
    (tmp_path / "killed" / "history.csv").unlink()  # Snakemake deletes a restarted job's outputs
    result, resumed = _run(tmp_path / "killed", epochs=3)
    assert result.resumed_from_epoch == 1
    assert _same_weights(resumed, uninterrupted)
    history = pd.read_csv(tmp_path / "killed" / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    best_model = load_model(tmp_path / "killed" / "model.pt")[0].state_dict()
    assert result.best_epoch >= 1
    # a finished run re-run does not train again, and restores its outputs
    (tmp_path / "killed" / "model.pt").unlink()
    again, _ = _run(tmp_path / "killed", epochs=3)
    assert again.resumed_from_epoch == 3 and again.epochs_run == 3
    assert again.best_epoch == result.best_epoch
    assert _same_weights(load_model(tmp_path / "killed" / "model.pt")[0].state_dict(), best_model)


def test_model_file_appears_only_when_training_has_finished(tmp_path):
    """A stopped Snakemake job's process may outlive the deletion of its outputs: a model.pt
    written at a best epoch mid-training would then look like a finished model to the next
    run. Epoch 1 is always the best so far; no epoch may leave model.pt behind before the
    training returns."""
    seen = {}

    def look(epoch, row):
        seen[epoch] = (tmp_path / "model.pt").exists()
        (tmp_path / "model.pt").unlink(missing_ok=True)  # as Snakemake's cleanup would

    result, _ = _run(tmp_path, epochs=3, on_epoch_end=look)
    assert seen == {1: False, 2: False, 3: False}
    assert (tmp_path / "model.pt").is_file()
    assert load_model(tmp_path / "model.pt")[1]["best_epoch"] == result.best_epoch


def test_the_best_epoch_so_far_exports_from_the_checkpoint(tmp_path):
    from beatgrid.training import export_best_model

    with pytest.raises(Killed):
        _run(tmp_path, epochs=3, on_epoch_end=_kill_after(2))
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    exported, meta = load_model(export_best_model(tmp_path / "checkpoint.pt", tmp_path / "best.pt"))
    assert meta["best_epoch"] == checkpoint["best"]["epoch"] and meta["features"]["fps"] == FPS
    assert meta["val_metrics"] == checkpoint["best"]["metrics"] and len(meta["pos_weight"]) == 2
    assert _same_weights(exported.state_dict(), checkpoint["best"]["state"])
    # once finished, the export is the model.pt that training wrote
    _run(tmp_path, epochs=3)
    finished, finished_meta = load_model(tmp_path / "model.pt")
    exported, meta = load_model(export_best_model(tmp_path / "checkpoint.pt", tmp_path / "best.pt"))
    assert _same_weights(exported.state_dict(), finished.state_dict())
    assert {k: v for k, v in meta.items() if k != "checksum"} == {k: v for k, v in finished_meta.items() if k != "checksum"}
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="other.pt: no best epoch"):
        export_best_model(tmp_path / "other.pt", tmp_path / "best.pt")


def test_checkpoint_of_another_config_is_ignored(tmp_path, caplog):
    with pytest.raises(Killed):
        _run(tmp_path, epochs=3, on_epoch_end=_kill_after(1))
    result, _ = _run(tmp_path, epochs=3, lr=1e-3)
    assert result.resumed_from_epoch is None
    assert "training from scratch" in caplog.text
    with pytest.raises(Killed):
        _run(tmp_path, epochs=3, on_epoch_end=_kill_after(1))
    result, _ = _run(tmp_path, epochs=3, data_seed=1)  # the data changed under the same ids
    assert result.resumed_from_epoch is None
    with pytest.raises(Killed):
        _run(tmp_path, epochs=3, on_epoch_end=_kill_after(1))
    result, _ = _run(tmp_path, epochs=3, beat_shift_frames=6)  # same shapes and sums
    assert result.resumed_from_epoch is None
    (tmp_path / "checkpoint.pt").write_bytes(b"truncated")
    result, _ = _run(tmp_path, epochs=3, lr=1e-3)
    assert result.resumed_from_epoch is None


def test_early_stopping_keeps_the_best_epoch(tmp_path, monkeypatch):
    """Validation scores scripted: best at epoch 2 (epoch 4 ties its F with a higher loss),
    so patience 2 stops after epoch 4 and model.pt holds epoch 2."""
    import beatgrid.training.epoch as training

    scores = iter([(0.5, 0.3), (0.7, 0.2), (0.6, 0.1), (0.7, 0.25), (0.9, 0.1)])

    def scripted(*args, **kwargs):
        beat_f, loss = next(scores)
        return {"loss": loss, "beat_f": beat_f, "downbeat_f": 0.0}

    monkeypatch.setattr(training, "evaluate", scripted)
    saved = {}
    ids, mels, targets = _data(n_tracks=2, n_frames=300)
    model = _model()

    def remember(epoch, row):
        saved[epoch] = _weights(model)

    result = train(model, FrameDataset(mels, targets, ids, crop_frames=100),
                   FrameDataset(mels, targets, ids), _cfg(epochs=10, patience=2), tmp_path,
                   val_fps=FPS, progress=False, on_epoch_end=remember)
    assert result.stopped_early and result.epochs_run == 4
    assert result.best_epoch == 2 and result.best_metrics["val_beat_f"] == 0.7
    assert _same_weights(_weights(model), saved[2])
    assert _same_weights(load_model(tmp_path / "model.pt")[0].state_dict(), saved[2])


def test_best_epoch_tracker_keeps_the_best_weights_and_counts_patience():
    from beatgrid.training.selection import BestEpoch, epoch_score

    model = torch.nn.Linear(2, 1)
    tracker = BestEpoch(patience=2)
    assert tracker.update(1, epoch_score(1, 0.5, 0.3, True), {"val_score": 0.5}, model)
    kept = _weights(model)
    with torch.no_grad():
        model.weight.add_(1.0)
    # same score, higher loss: not better
    assert not tracker.update(2, epoch_score(2, 0.5, 0.4, True), {}, model)
    assert not tracker.patience_exhausted
    assert not tracker.update(3, epoch_score(3, 0.4, 0.1, True), {}, model)
    assert tracker.patience_exhausted and tracker.epoch == 1
    assert _same_weights(tracker.state, kept)
    # the checkpoint round trip gives the same tracker
    again = BestEpoch.from_checkpoint(2, tracker.checkpoint_entries())
    assert (again.epoch, again.score, again.bad_epochs) == (1, tracker.score, 2)
    # without validation the latest epoch wins; patience 0 never stops
    latest = BestEpoch(patience=0)
    for epoch in (1, 2, 3):
        assert latest.update(epoch, epoch_score(epoch, math.nan, math.nan, False), {}, model)
    assert latest.epoch == 3 and not latest.patience_exhausted


def test_selection_score_values_beats_and_metre():
    assert selection_score(0.9, 0.5) == pytest.approx(0.7)
    assert selection_score(0.9, math.nan) == pytest.approx(0.9)  # no downbeat annotations
    assert selection_score(math.nan, 0.5) == -math.inf


def test_an_epoch_without_the_metre_is_not_kept(tmp_path, monkeypatch):
    """Epoch 1 finds the beats but no downbeats; epoch 2 has slightly lower beat F and the
    metre: model.pt must hold epoch 2 (beat F alone would keep epoch 1)."""
    import beatgrid.training.epoch as training

    scores = iter([(0.95, 0.0), (0.90, 0.6), (0.92, 0.1)])

    def scripted(*args, **kwargs):
        beat_f, downbeat_f = next(scores)
        return {"loss": 0.1, "beat_f": beat_f, "downbeat_f": downbeat_f}

    monkeypatch.setattr(training, "evaluate", scripted)
    ids, mels, targets = _data(n_tracks=2, n_frames=300)
    result = train(_model(), FrameDataset(mels, targets, ids, crop_frames=100),
                   FrameDataset(mels, targets, ids), _cfg(epochs=3, patience=0), tmp_path,
                   val_fps=FPS, progress=False)
    assert result.best_epoch == 2
    assert result.best_metrics["val_downbeat_f"] == 0.6
    assert load_model(tmp_path / "model.pt")[1]["best_epoch"] == 2
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["val_score"].tolist() == pytest.approx([0.475, 0.75, 0.51])


def test_tracks_without_downbeats_do_not_train_the_downbeat_output(tmp_path):
    ids, mels, targets = _data(n_tracks=2, n_frames=300)
    for t in ids:
        targets[t][:, 1] = 0.0  # beats-only annotations
    train_set = FrameDataset(mels, targets, ids, crop_frames=100,
                             has_downbeats={t: False for t in ids})
    model = _model()
    head_before = model.head.weight.detach().clone()
    train(model, train_set, None, _cfg(epochs=1, weight_decay=0.0), tmp_path, val_fps=FPS,
          progress=False)
    assert torch.equal(model.head.weight[1], head_before[1])  # no gradient ever reached it
    assert not torch.equal(model.head.weight[0], head_before[0])


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(step, total_steps=100, warmup_steps=10, min_ratio=0.01) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] == pytest.approx(0.01, abs=0.01)
    assert lr_factor(100, 100, 10, 0.01) == pytest.approx(0.01)


def test_train_config_from_a_config_block():
    block = {"causal": False, "conv_channels": [16, 32], "rnn_hidden": 64, "epochs": 5,
             "batch_size": 2, "pos_weight": "auto", "lr": 0.001, "device": "cpu", "amp": True}
    cfg = TrainConfig.from_dict(block)
    assert (cfg.epochs, cfg.batch_size, cfg.lr) == (5, 2, 0.001)
    assert "device" not in cfg.result_dict()
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="focal")
    with pytest.raises(ValueError, match="pos_weight"):
        TrainConfig(pos_weight="balanced")


def test_an_unavailable_cuda_request_is_an_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    ids, mels, targets = _data(n_tracks=1, n_frames=100)
    with pytest.raises(RuntimeError, match="CUDA"):
        train(_model(), FrameDataset(mels, targets, ids), None, _cfg(device="cuda"), tmp_path,
              val_fps=FPS, progress=False)


def test_history_values_are_finite(tmp_path):
    result, _ = _run(tmp_path)
    for row in result.history:
        assert all(math.isfinite(row[c]) for c in HISTORY_COLUMNS)


def test_epoch_log_without_a_validation_set_shows_what_was_measured(tmp_path, caplog):
    ids, mels, targets = _data(n_tracks=2, n_frames=300)
    with caplog.at_level("INFO", logger="beatgrid.training.loop"):
        train(_model(), FrameDataset(mels, targets, ids, crop_frames=120), None, _cfg(epochs=1), tmp_path,
              val_fps=FPS, progress=False)
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1")]
    assert len(epoch_lines) == 1 and "nan" not in epoch_lines[0] and "last epoch is kept" in epoch_lines[0]


def test_freeze_parameters_names_what_it_cannot_find():
    from beatgrid.models import build_model
    from beatgrid.training import freeze_parameters

    model = build_model("crnn", {"n_mels": 8, "conv_channels": [4], "rnn_hidden": 4, "rnn_layers": 1})
    frozen = freeze_parameters(model, ["blocks"])
    assert frozen and all(n.startswith("blocks.") for n in frozen)
    assert all(p.requires_grad != n.startswith("blocks.") for n, p in model.named_parameters())
    with pytest.raises(ValueError, match=r"\['conv'\].*blocks"):
        freeze_parameters(model, ["conv"])


def test_frozen_layers_keep_their_weights_and_normalisation_statistics(tmp_path):
    """A frozen convolutional front end is fixed, BatchNorm running statistics included
    (they are buffers, not parameters: train mode alone would move them towards the
    fine-tuning tracks); the layers that train still update theirs, unless
    ``keep_norm_statistics`` keeps every layer's."""
    ids, mels, targets = _data(n_tracks=3, n_frames=300)
    for t in ids:
        mels[t] = 3.0 * mels[t] + 1.0  # other statistics than the model's start
    model = _model()
    before = _weights(model)
    train(model, FrameDataset(mels, targets, ids, crop_frames=200), None, _cfg(epochs=1, freeze=["blocks"]),
          tmp_path, val_fps=FPS, progress=False)
    after = model.state_dict()
    frozen = [k for k in before if k.startswith("blocks.")]
    assert any(k.endswith("running_mean") for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["head.weight"], after["head.weight"])

    unfrozen = _model()
    before = _weights(unfrozen)
    train(unfrozen, FrameDataset(mels, targets, ids, crop_frames=200), None, _cfg(epochs=1), tmp_path / "all",
          val_fps=FPS, progress=False)
    moved = [k for k in before if k.endswith("running_mean") and not torch.equal(before[k], unfrozen.state_dict()[k])]
    assert moved

    kept = _model()
    before = _weights(kept)
    train(kept, FrameDataset(mels, targets, ids, crop_frames=200), None, _cfg(epochs=1, keep_norm_statistics=True),
          tmp_path / "kept", val_fps=FPS, progress=False)
    after = kept.state_dict()
    statistics = [k for k in before if "running_" in k or k.endswith("num_batches_tracked")]
    assert statistics and all(torch.equal(before[k], after[k]) for k in statistics)
    assert not torch.equal(before["blocks.0.conv.weight"], after["blocks.0.conv.weight"])  # the weights still train


def test_loader_workers_default_by_data_path_and_never_exceed_the_cpus(monkeypatch):
    from beatgrid import threads
    from beatgrid.training import loader_workers

    monkeypatch.setattr(threads, "available_cpus", lambda: 1)
    assert loader_workers(None) == 0 and loader_workers(None, on_demand=True) == 1
    assert loader_workers(8) == 1 and loader_workers(0, on_demand=True) == 0
    monkeypatch.setattr(threads, "available_cpus", lambda: 16)
    assert loader_workers(None, on_demand=True) == 2 and loader_workers(4) == 4
