"""Which epoch is kept, and when training stops: the best-epoch / early-stopping tracker."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["selection_score", "epoch_score", "BestEpoch"]


def finite(value: float | None, default: float = -math.inf) -> float:
    """``value`` when it is a finite number, else ``default``."""
    return value if value is not None and math.isfinite(value) else default


def selection_score(beat_f: float, downbeat_f: float) -> float:
    """How good an epoch is, for choosing the one kept: the mean of validation beat F
    and downbeat F, so a model that has not learned the metre scores at most half.
    Beat F alone when no validation track has annotated downbeats (``downbeat_f`` NaN);
    -inf when beat F is missing."""
    beat = finite(beat_f)
    if not math.isfinite(beat):
        return -math.inf
    downbeat = finite(downbeat_f, math.nan)
    return beat if math.isnan(downbeat) else 0.5 * (beat + downbeat)


def epoch_score(epoch: int, val_score: float, val_loss: float, validated: bool) -> tuple[float, float]:
    """The key epochs are compared by (higher is better): the selection score, ties
    broken by the lower validation loss; without validation, the later epoch."""
    if validated:
        return (val_score, -finite(val_loss, math.inf))
    return (0.0, float(epoch))


@dataclass
class BestEpoch:
    """The best epoch so far (its number, comparison key, metrics and weights on the CPU)
    and the epochs since it (``bad_epochs``), which stop training after ``patience``
    (0: never early)."""

    patience: int
    epoch: int = 0
    score: tuple[float, float] = (-math.inf, -math.inf)
    metrics: dict[str, float] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0

    def update(self, epoch: int, score: tuple[float, float], metrics: dict[str, float],
               model: nn.Module) -> bool:
        """Record ``epoch``; keep a copy of ``model``'s weights if it beats the best. Returns
        whether it did."""
        if score > self.score:
            self.epoch, self.score, self.metrics = epoch, score, metrics
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    def record(self, row: Mapping[str, float], model: nn.Module, validated: bool) -> bool:
        """Record an epoch by its history row (:data:`HISTORY_COLUMNS`); ``validated``: were
        its validation columns measured? Returns whether it is the best so far."""
        epoch = int(row["epoch"])
        metrics = {k: row[k] for k in ("val_loss", "val_beat_f", "val_downbeat_f", "val_score", "train_loss")}
        return self.update(epoch, epoch_score(epoch, row["val_score"], row["val_loss"], validated), metrics, model)

    @property
    def patience_exhausted(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def checkpoint_entries(self) -> dict[str, Any]:
        """The checkpoint's ``best`` and ``bad_epochs`` entries."""
        return {"best": {"epoch": self.epoch, "score": list(self.score), "metrics": self.metrics,
                         "state": self.state},
                "bad_epochs": self.bad_epochs}

    @classmethod
    def from_checkpoint(cls, patience: int, checkpoint: dict[str, Any]) -> "BestEpoch":
        best = checkpoint["best"]
        return cls(patience=patience, epoch=best["epoch"], score=tuple(best["score"]),
                   metrics=best["metrics"], state=best["state"], bad_epochs=checkpoint["bad_epochs"])
