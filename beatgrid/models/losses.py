"""Frame-wise losses for beat and downbeat logits over padded batches.

Both losses take logits and targets ``[B, T, C]`` (column 0 beat, column 1 downbeat)
and a ``lengths`` vector ``[B]``: frames at or past a row's length are padding and
contribute nothing to the loss or its gradients. ``output_mask`` ``[B, C]`` switches
whole outputs off per sequence (e.g. downbeats of a track annotated with beats only).

- :class:`MaskedBCELoss`: binary cross-entropy with logits, each output weighted for
  class imbalance with ``pos_weight`` (see :func:`estimate_pos_weight`). Soft targets
  (widened beats, e.g. 0.5 next to the beat frame) are used as they are.
- :class:`ShiftTolerantBCELoss`: the shift-tolerant loss of Beat This! (Foscarin et
  al., ISMIR 2024): predictions are max-pooled over +-``tolerance_frames`` before the
  loss on positive frames, so a peak a few frames off still counts; negatives within
  ``2 * tolerance_frames`` of a positive are ignored. Positives are the frames whose
  target exceeds 0.5 (the annotated beat frames), not the widened neighbours.

Each loss is the weighted sum over valid frames divided by the number of valid
frames, averaged over the outputs that are switched on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaskedBCELoss", "ShiftTolerantBCELoss", "estimate_pos_weight", "make_loss",
           "LOSSES"]

#: Loss names accepted by :func:`make_loss` (the ``loss`` key of a training config).
LOSSES = ("bce", "shift_tolerant")

# Logit put on padded frames before max-pooling: far below any real logit, still finite
# in float16.
_PAD_LOGIT = -1.0e4


def estimate_pos_weight(targets: Iterable[np.ndarray], max_weight: float = 100.0) -> np.ndarray:
    """Negatives / positives per output column over frame targets ``[T, C]``.

    Soft targets count fractionally (a frame at 0.5 is half positive, half negative).
    Columns without any positive get weight 1. Clipped to ``max_weight``.
    """
    pos = None
    n_frames = 0
    for target in targets:
        target = np.asarray(target, dtype=np.float64)
        if target.ndim != 2:
            raise ValueError(f"targets must be [T, C] arrays, got shape {target.shape}")
        pos = target.sum(axis=0) if pos is None else pos + target.sum(axis=0)
        n_frames += target.shape[0]
    if pos is None or n_frames == 0:
        raise ValueError("cannot estimate pos_weight from zero frames")
    neg = n_frames - pos
    weight = np.where(pos > 0, neg / np.maximum(pos, 1e-12), 1.0)
    return np.clip(weight, 1.0, max_weight).astype(np.float32)


def _weight_tensor(pos_weight: float | Sequence[float] | np.ndarray | None) -> torch.Tensor:
    """``pos_weight`` as a float32 ``[C]`` (or ``[1]``) tensor; ``None`` means 1."""
    return torch.as_tensor(np.asarray(1.0 if pos_weight is None else pos_weight, dtype=np.float32)).reshape(-1)


def _valid_frames(logits: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Float mask [B, T, 1]: 1 on valid frames, 0 on padding."""
    b, t = logits.shape[:2]
    if lengths is None:
        return logits.new_ones(b, t, 1)
    frames = torch.arange(t, device=logits.device)
    valid = frames.unsqueeze(0) < torch.as_tensor(lengths, device=logits.device).unsqueeze(1)
    return valid.unsqueeze(-1).to(logits.dtype)


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.shape != targets.shape or logits.ndim != 3:
        raise ValueError(f"logits and targets must both be [B, T, C]; got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")


def _masked_inputs(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor | None,
                   pad_logit: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``logits`` and ``targets`` ``[B, T, C]`` as float32 with padded frames replaced (logits
    by ``pad_logit``, targets by 0: padding may hold anything, even NaN), and the valid-frame
    mask ``[B, T, 1]``."""
    _check_shapes(logits, targets)
    logits, targets = logits.float(), targets.float()
    valid = _valid_frames(logits, lengths)
    logits = torch.where(valid > 0, logits, torch.full_like(logits, pad_logit))
    targets = torch.where(valid > 0, targets, torch.zeros_like(targets))
    return logits, targets, valid


def _reduce(frame_loss: torch.Tensor, valid: torch.Tensor,
            output_mask: torch.Tensor | None) -> torch.Tensor:
    """Sum over valid frames / number of valid frames, per output; mean over outputs."""
    weight = valid
    if output_mask is not None:
        weight = valid * output_mask.to(valid.dtype).unsqueeze(1)  # [B, T, C]
    per_output = (frame_loss * weight).sum(dim=(0, 1))
    n_valid = weight.expand_as(frame_loss).sum(dim=(0, 1))
    active = n_valid > 0
    if not torch.any(active):
        return frame_loss.sum() * 0.0  # keeps the graph; nothing to learn from
    return (per_output[active] / n_valid[active]).mean()


class MaskedBCELoss(nn.Module):
    """Binary cross-entropy with logits on valid frames, ``pos_weight`` per output.

    Args:
        pos_weight: weight of positive targets per output column ([C] or a scalar);
            None for 1.
    """

    def __init__(self, pos_weight: float | Sequence[float] | np.ndarray | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", _weight_tensor(pos_weight))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                lengths: torch.Tensor | None = None,
                output_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss of logits ``[B, T, C]`` against targets ``[B, T, C]`` in [0, 1]."""
        logits, targets, valid = _masked_inputs(logits, targets, lengths, pad_logit=0.0)
        frame_loss = F.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=self.pos_weight.to(logits.device), reduction="none")
        return _reduce(frame_loss, valid, output_mask)


class ShiftTolerantBCELoss(nn.Module):
    """Beat This!'s shift-tolerant weighted BCE on valid frames.

    Args:
        pos_weight: weight of positive frames per output column ([C] or a scalar).
        tolerance_frames: max-pool half-width applied to the predictions for the
            positive term; negatives within ``2 * tolerance_frames`` of a positive
            (or of any widened target frame) are ignored.
    """

    def __init__(self, pos_weight: float | Sequence[float] | np.ndarray | None = None,
                 tolerance_frames: int = 3) -> None:
        super().__init__()
        if tolerance_frames < 1:
            raise ValueError("tolerance_frames must be >= 1 (use MaskedBCELoss for 0)")
        self.tolerance_frames = int(tolerance_frames)
        self.register_buffer("pos_weight", _weight_tensor(pos_weight))

    @staticmethod
    def _spread(x: torch.Tensor, half_width: int) -> torch.Tensor:
        """Max over +-half_width frames of x [B, T, C] (same length)."""
        pooled = F.max_pool1d(x.transpose(1, 2), 2 * half_width + 1, stride=1,
                              padding=half_width)
        return pooled.transpose(1, 2)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                lengths: torch.Tensor | None = None,
                output_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss of logits ``[B, T, C]`` against targets ``[B, T, C]``."""
        logits, targets, valid = _masked_inputs(logits, targets, lengths, pad_logit=_PAD_LOGIT)
        tol = self.tolerance_frames
        positive = (targets > 0.5).to(logits.dtype)
        near_target = self._spread((targets > 0).to(logits.dtype), 2 * tol)
        pooled = self._spread(logits, tol)
        pos_weight = self.pos_weight.to(logits.device)
        # positive frames: -log sigmoid(max of nearby logits), weighted
        loss_pos = F.softplus(-pooled) * pos_weight * positive
        # negative frames far from every target: -log(1 - sigmoid(logit))
        loss_neg = F.softplus(logits) * (1.0 - near_target)
        frame_loss = torch.where(valid > 0, loss_pos + loss_neg, torch.zeros_like(loss_pos))
        return _reduce(frame_loss, valid, output_mask)


def make_loss(name: str, pos_weight: float | Sequence[float] | np.ndarray | None = None,
              tolerance_frames: int = 3) -> nn.Module:
    """The loss called ``name`` (one of :data:`LOSSES`)."""
    if name == "bce":
        return MaskedBCELoss(pos_weight)
    if name == "shift_tolerant":
        return ShiftTolerantBCELoss(pos_weight, tolerance_frames)
    raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}")
