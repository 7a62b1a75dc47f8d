"""The training loop: set a run up, resume it, run epochs until done, write model.pt."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from ..device import resolve_device
from ..models import save_model
from ..models.losses import estimate_pos_weight, make_loss
from . import epoch as epochs
from .checkpoint import CHECKPOINT_NAME, Checkpoint, Resumed, run_identity
from .config import TrainConfig, TrainResult
from .outputs import plot_curves, write_history
from .runtime import freeze_parameters, loader_workers, seed_everything
from .selection import selection_score

__all__ = ["train", "MODEL_NAME"]

log = logging.getLogger(__name__)

MODEL_NAME = "model.pt"


def _resolve_pos_weight(cfg: TrainConfig, train_set: Dataset,
                        has_downbeats: Mapping[str, bool] | None) -> np.ndarray | None:
    """cfg.pos_weight as an array [C]; "auto": negatives / positives of the training
    targets (downbeats: over the tracks with annotated downbeats only)."""
    if cfg.pos_weight is None:
        return None
    if cfg.pos_weight != "auto":
        return np.asarray(cfg.pos_weight, dtype=np.float32).reshape(-1)
    targets = epochs.dataset_targets(train_set)
    if targets is None:  # no whole tracks exposed: estimate from one pass of items
        targets = {item[2]: np.asarray(item[1]) for item in
                   (train_set[i] for i in range(len(train_set)))}
    weight = estimate_pos_weight(targets.values())
    if has_downbeats is not None and weight.size > 1:
        annotated = [t for tid, t in targets.items() if has_downbeats.get(tid, True)]
        if annotated:
            weight[1] = estimate_pos_weight(annotated)[1]
    return weight


@dataclass
class _Run:
    """A run set up: the model on its device with its loss, optimizer and identity."""

    device: torch.device
    use_amp: bool
    kind: str
    n_parameters: int
    has_downbeats: Mapping[str, bool] | None
    pos_weight: np.ndarray | None
    loss_fn: nn.Module
    steps_per_epoch: int
    optimization: epochs.Optimization
    identity: dict[str, Any]
    validated: bool  #: is there a validation set?


def _set_up(model: nn.Module, train_set: Dataset, val_set: Dataset | None, cfg: TrainConfig) -> _Run:
    """Seed, move and freeze ``model``; resolve the loss weights; build the optimizer."""
    device = resolve_device(cfg.device)
    use_amp = bool(cfg.amp) and device.type == "cuda"
    seed_everything(cfg.seed)
    model.to(device)
    frozen = freeze_parameters(model, cfg.freeze)
    if frozen:
        log.info("frozen: %d of %d parameter tensors (%s)", len(frozen), len(list(model.parameters())),
                 ", ".join(cfg.freeze))
    if len(train_set) == 0:
        raise ValueError("training set is empty")
    has_downbeats = epochs.has_downbeats(train_set)
    pos_weight = _resolve_pos_weight(cfg, train_set, has_downbeats)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    return _Run(device=device, use_amp=use_amp, kind=getattr(model, "model_kind", type(model).__name__),
                n_parameters=sum(p.numel() for p in model.parameters()), has_downbeats=has_downbeats,
                pos_weight=pos_weight,
                loss_fn=make_loss(cfg.loss, pos_weight, cfg.shift_tolerance_frames).to(device),
                steps_per_epoch=steps_per_epoch,
                optimization=epochs.Optimization.build(model, cfg, steps_per_epoch, use_amp),
                identity=run_identity(cfg, model, train_set, val_set),
                validated=val_set is not None and len(val_set) > 0)


def _run_epoch(model: nn.Module, run: _Run, train_set: Dataset, val_set: Dataset | None,
               cfg: TrainConfig, epoch: int, *, val_fps: float, show: bool) -> dict[str, float]:
    """Train one epoch on shuffled crops, validate, and return its history row."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if hasattr(train_set, "set_epoch"):
        train_set.set_epoch(epoch)
    sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, collate_fn=epochs.collate_fn(),
                        num_workers=loader_workers(cfg.num_workers, on_demand=getattr(train_set, "on_demand", False)),
                        pin_memory=run.device.type == "cuda")
    batches = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not show, total=run.steps_per_epoch)
    train_loss, frames = epochs.train_epoch(model, batches, run.loss_fn, run.optimization, run.device,
                                            use_amp=run.use_amp, downbeats_known=run.has_downbeats, epoch=epoch,
                                            keep_norm_statistics=cfg.keep_norm_statistics)
    train_seconds = time.perf_counter() - started
    if run.validated:
        metrics = epochs.evaluate(model, val_set, val_fps, run.loss_fn, run.device, cfg.batch_size,
                                  cfg.peak_threshold, run.use_amp)
    else:
        metrics = {"loss": math.nan, "beat_f": math.nan, "downbeat_f": math.nan}
    return {
        "epoch": epoch, "train_loss": train_loss, "val_loss": metrics["loss"],
        "val_beat_f": metrics["beat_f"], "val_downbeat_f": metrics["downbeat_f"],
        "lr": run.optimization.lr, "seconds": time.perf_counter() - started,
        "frames_per_s": frames / train_seconds if train_seconds > 0 else math.nan,
        "val_score": selection_score(metrics["beat_f"], metrics["downbeat_f"]) if run.validated else math.nan,
    }


def _model_file_meta(model_meta: Mapping[str, Any] | None, cfg: TrainConfig, val_fps: float,
                     state: Resumed, pos_weight: np.ndarray | None) -> dict[str, Any]:
    meta = dict(model_meta or {})
    meta.setdefault("features", {"fps": val_fps})
    meta.update(train_config=cfg.to_dict(), best_epoch=state.best.epoch, val_metrics=state.best.metrics,
                # what the loss weighted positives by: decoders undo it (calibrate)
                pos_weight=None if pos_weight is None else [float(w) for w in pos_weight])
    return meta


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    val_fps: float,
    progress: bool = True,
    model_meta: Mapping[str, Any] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` and write model.pt, checkpoint.pt, history.csv, curves.png to ``out_dir``.

    Args:
        model: built with :func:`beatgrid.models.build_model` (so model.pt can rebuild
            it) and, for a reproducible initialisation, after :func:`seed_everything`.
        train_set: items ``(x [T, F], y [T, 2], track_id)``, cropped to
            ``cfg.crop_frames`` by the dataset; ``set_epoch(epoch)`` is called if present.
        val_set: whole tracks (not cropped), or None (then the last epoch is kept).
        cfg: training settings.
        out_dir: output folder (created).
        val_fps: frame rate of the targets, frames per second (for the F-measure).
        progress: show tqdm bars (only on a TTY).
        model_meta: extra model.pt entries, e.g. ``features`` (mel config and fps).
        on_epoch_end: called as ``on_epoch_end(epoch, history_row)`` after each epoch's
            checkpoint is written.

    model.pt is written only when training has finished (a model.pt is the sign of a
    finished training: Snakemake takes an existing output as up to date, and a process it
    stopped may outlive the cleanup of its outputs); until then the best epoch so far lives
    in checkpoint.pt (:func:`~beatgrid.training.checkpoint.export_best_model` writes it out).
    Returns the :class:`TrainResult`; ``model`` holds the best epoch's weights.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _set_up(model, train_set, val_set, cfg)
    checkpoint = Checkpoint(out_dir / CHECKPOINT_NAME, run.identity)
    state = checkpoint.resume(model, run.optimization.parts(), cfg.patience)
    resumed_from = state.epoch or None
    log.info("training %s: %d parameters on %s%s; %d training items, %d steps per epoch, pos_weight %s, loss %s",
             run.kind, run.n_parameters, run.device, " with AMP" if run.use_amp else "", len(train_set),
             run.steps_per_epoch, None if run.pos_weight is None else np.round(run.pos_weight, 2).tolist(), cfg.loss)

    show = progress and sys.stderr.isatty()
    with tqdm(total=cfg.epochs, initial=state.epoch, desc=f"train {run.kind}", unit="epoch",
              disable=not show or state.finished) as bar:
        while not state.finished:
            row = _run_epoch(model, run, train_set, val_set, cfg, state.epoch + 1, val_fps=val_fps, show=show)
            state.epoch = int(row["epoch"])
            state.history.append(row)
            improved = state.best.record(row, model, validated=run.validated)
            state.finished = state.epoch == cfg.epochs or state.best.patience_exhausted
            _log_epoch(row, cfg.epochs, improved, run.validated)
            bar.update()
            bar.set_postfix(loss=f"{row['train_loss']:.4f}",
                            **({"val_f": f"{row['val_beat_f']:.3f}"} if run.validated else {}))
            checkpoint.save(model, run.optimization.parts(), state,
                            _model_file_meta(model_meta, cfg, val_fps, state, run.pos_weight))
            write_history(out_dir, state.history)
            if on_epoch_end is not None:
                on_epoch_end(state.epoch, row)
            if state.finished and state.epoch < cfg.epochs:
                log.info("early stop after epoch %d: no improvement for %d epochs (best: epoch %d)",
                         state.epoch, state.best.bad_epochs, state.best.epoch)

    model.load_state_dict(state.best.state)
    save_model(out_dir / MODEL_NAME, model, _model_file_meta(model_meta, cfg, val_fps, state, run.pos_weight))
    write_history(out_dir, state.history)
    plot_curves(state.history, out_dir / "curves.png", title=f"{run.kind} training (best epoch {state.best.epoch})",
                best_epoch=state.best.epoch)
    epochs_run = state.history[-1]["epoch"] if state.history else 0
    return TrainResult(
        model_path=out_dir / MODEL_NAME, best_epoch=state.best.epoch, best_metrics=state.best.metrics,
        history=state.history, epochs_run=epochs_run, stopped_early=epochs_run < cfg.epochs,
        resumed_from_epoch=resumed_from, device=str(run.device), n_parameters=run.n_parameters,
        pos_weight=[] if run.pos_weight is None else [float(w) for w in run.pos_weight],
    )


def _log_epoch(row: Mapping[str, float], n_epochs: int, improved: bool, validated: bool = True) -> None:
    """One line per epoch; without a validation set only what was measured (the last epoch is kept)."""
    if not validated:
        log.info("epoch %d/%d: train loss %.4f, lr %.2e, %.1f s, %.0f frames/s (no validation set: "
                 "the last epoch is kept)", row["epoch"], n_epochs, row["train_loss"], row["lr"], row["seconds"],
                 row["frames_per_s"])
        return
    log.info("epoch %d/%d: train loss %.4f, val loss %.4f, val beat F %.3f, downbeat F %.3f, lr %.2e, "
             "%.1f s, %.0f frames/s%s", row["epoch"], n_epochs, row["train_loss"], row["val_loss"],
             row["val_beat_f"], row["val_downbeat_f"], row["lr"], row["seconds"], row["frames_per_s"],
             " (best)" if improved else "")
