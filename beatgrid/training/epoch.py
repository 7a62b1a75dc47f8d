"""One epoch: a pass of optimizer steps over the training crops, and validation on whole tracks."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..targets import target_event_frames
from .config import TrainConfig
from .runtime import lr_factor, train_mode

__all__ = ["Optimization", "train_epoch", "evaluate", "accepts_lengths", "has_downbeats", "dataset_targets"]


def accepts_lengths(model: nn.Module) -> bool:
    """Does ``model.forward`` take ``lengths`` (the valid frames of every row)?"""
    try:
        return "lengths" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def collate_fn():
    from ..data.dataset import collate_padded

    return collate_padded


def dataset_targets(dataset: Dataset) -> dict[str, np.ndarray] | None:
    """Whole-track targets {track_id: [T, C]} if the dataset exposes them."""
    targets = getattr(dataset, "targets", None)
    track_ids = getattr(dataset, "track_ids", None)
    if isinstance(targets, Mapping) and track_ids is not None:
        return {tid: np.asarray(targets[tid]) for tid in track_ids}
    return None


def has_downbeats(dataset: Dataset | None) -> dict[str, bool] | None:
    """Per track: are downbeats annotated? The dataset's ``has_downbeats`` where it has
    one; else from whole-track targets (beats but no downbeat at all: not annotated)."""
    if dataset is None:
        return None
    known = getattr(dataset, "has_downbeats", None)
    if isinstance(known, Mapping):
        return dict(known)
    targets = dataset_targets(dataset)
    if targets is None:
        return None
    return {tid: target.shape[1] < 2 or bool(np.any(target[:, 1] > 0)) or not np.any(target[:, 0] > 0)
            for tid, target in targets.items()}


def output_mask(targets: torch.Tensor, track_ids: Sequence[str],
                downbeats_known: Mapping[str, bool] | None) -> torch.Tensor | None:
    """[B, C] mask switching the downbeat output off for tracks without downbeats."""
    if targets.shape[-1] < 2:
        return None
    mask = torch.ones(targets.shape[0], targets.shape[-1], device=targets.device)
    for row, tid in enumerate(track_ids):
        if downbeats_known is not None and tid in downbeats_known:
            annotated = downbeats_known[tid]
        else:  # crop-level guess when the whole track is not known
            annotated = bool((targets[row, :, 1] > 0).any()) or not bool((targets[row, :, 0] > 0).any())
        if not annotated:
            mask[row, 1] = 0.0
    return mask


@dataclass
class Optimization:
    """AdamW over the trainable parameters, linear warm-up then cosine decay per step,
    gradient clipping, and the mixed-precision scaler (enabled on CUDA only)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    grad_clip: float

    @classmethod
    def build(cls, model: nn.Module, cfg: TrainConfig, steps_per_epoch: int, use_amp: bool) -> "Optimization":
        total_steps = steps_per_epoch * cfg.epochs
        warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, cfg.min_lr_ratio))
        return cls(optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_amp), cfg.grad_clip)

    def parts(self) -> dict[str, object]:
        """The objects a checkpoint keeps the state of, by checkpoint key."""
        return {"optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def step(self, loss: torch.Tensor, model: nn.Module) -> None:
        """Backpropagate ``loss`` and take one optimizer and one schedule step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]


def train_epoch(model: nn.Module, batches: Iterable, loss_fn: nn.Module, optimization: Optimization,
                device: torch.device, *, use_amp: bool, downbeats_known: Mapping[str, bool] | None,
                epoch: int, keep_norm_statistics: bool = False) -> tuple[float, int]:
    """One pass over ``batches`` (``collate_padded`` batches); returns the mean training
    loss per valid frame and the number of valid frames. Normalisation layers train as
    :func:`beatgrid.training.runtime.train_mode` says.

    Raises FloatingPointError on a non-finite loss, naming the epoch.
    """
    with_lengths = accepts_lengths(model)
    train_mode(model, keep_norm_statistics)
    loss_sum, frames = 0.0, 0
    for x, y, track_ids, lengths in batches:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        mask = output_mask(y, track_ids, downbeats_known)
        with torch.autocast(device.type, enabled=use_amp):
            logits = model(x, lengths) if with_lengths else model(x)
        loss = loss_fn(logits.float(), y, lengths.to(device), mask)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {float(loss)} at epoch {epoch}; "
                                     "lower lr or check the inputs for NaN/inf")
        optimization.step(loss, model)
        n_valid = int(lengths.sum())
        loss_sum += float(loss.detach()) * n_valid
        frames += n_valid
    return loss_sum / max(frames, 1), frames


def _pick_peaks(activation: np.ndarray, fps: float, threshold: float) -> np.ndarray:
    """Beat times (s) of an activation [T]: the library's peak picking."""
    from ..decoding.peaks import pick_peaks

    return np.asarray(pick_peaks(activation, fps, threshold=threshold), dtype=float)


def _f_measure(reference: np.ndarray, estimated: np.ndarray) -> float:
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(mir_eval.beat.f_measure(np.asarray(reference, float),
                                             np.asarray(estimated, float)))


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, fps: float, loss_fn: nn.Module | None = None,
             device: torch.device | str = "cpu", batch_size: int = 8, threshold: float = 0.5,
             amp: bool = False) -> dict[str, float]:
    """Loss and mir_eval F-measures on whole tracks of ``dataset`` (items not cropped).

    Reference beats are the event frames of the targets (:func:`target_event_frames`),
    estimated beats the peaks of the sigmoid activations. ``downbeat_f`` averages over
    tracks with annotated downbeats (NaN if none). Returns ``loss``, ``beat_f``,
    ``downbeat_f``.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn())
    with_lengths = accepts_lengths(model)
    downbeats_known = has_downbeats(dataset)
    total_loss, total_frames = 0.0, 0
    beat_f, downbeat_f = [], []
    for x, y, track_ids, lengths in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            logits = model(x, lengths) if with_lengths else model(x)
        n_valid = int(lengths.sum())
        if loss_fn is not None:
            mask = output_mask(y, track_ids, downbeats_known)
            total_loss += float(loss_fn(logits, y, lengths.to(device), mask)) * n_valid
        total_frames += n_valid
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        targets = y.cpu().numpy()
        for row, length in enumerate(lengths.tolist()):
            act, ref = probs[row, :length], targets[row, :length]
            beat_f.append(_f_measure(target_event_frames(ref[:, 0]) / fps,
                                     _pick_peaks(act[:, 0], fps, threshold)))
            annotated = True if downbeats_known is None else downbeats_known.get(track_ids[row], True)
            if ref.shape[1] > 1 and annotated and np.any(ref[:, 1] > 0):
                downbeat_f.append(_f_measure(target_event_frames(ref[:, 1]) / fps,
                                             _pick_peaks(act[:, 1], fps, threshold)))
    model.train(was_training)
    return {
        "loss": total_loss / total_frames if loss_fn is not None and total_frames else math.nan,
        "beat_f": float(np.mean(beat_f)) if beat_f else math.nan,
        "downbeat_f": float(np.mean(downbeat_f)) if downbeat_f else math.nan,
    }
