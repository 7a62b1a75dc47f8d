"""What a training run sets up around the model: seeds, schedule, frozen layers, loader workers."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["seed_everything", "lr_factor", "freeze_parameters", "train_mode", "loader_workers"]


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (CUDA included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Learning-rate multiplier at optimizer ``step`` (0-based): linear warm-up to 1 over
    ``warmup_steps``, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def freeze_parameters(model: nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Keep the parameters whose names start with one of ``prefixes`` fixed; returns their names.

    Raises ValueError naming a prefix that matches no parameter (a typo would silently
    fine-tune everything).
    """
    names = [name for name, _ in model.named_parameters()]
    unmatched = [p for p in prefixes if not any(n == p or n.startswith(f"{p}.") for n in names)]
    if unmatched:
        tops = sorted({n.split(".")[0] for n in names})
        raise ValueError(f"freeze: {unmatched} name no parameter of the model (its layers: {tops})")
    frozen = []
    for name, parameter in model.named_parameters():
        if any(name == p or name.startswith(f"{p}.") for p in prefixes):
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen


def train_mode(model: nn.Module, keep_norm_statistics: bool = False) -> nn.Module:
    """``model.train()``, except that normalisation layers whose parameters are all frozen
    (:func:`freeze_parameters`), or all of them with ``keep_norm_statistics``, stay in eval
    mode: their running statistics are weights too, and a frozen layer must not drift
    towards the few tracks it is fine-tuned on."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            parameters = list(module.parameters(recurse=False))
            if keep_norm_statistics or (parameters and not any(parameter.requires_grad for parameter in parameters)):
                module.eval()
    return model


def loader_workers(requested: int | None, on_demand: bool = False) -> int:
    """DataLoader worker processes: ``requested``, or when None none for data in memory
    and 2 for data read from the stores on demand; never more than the CPUs available."""
    from ..threads import available_cpus

    wanted = (2 if on_demand else 0) if requested is None else int(requested)
    return max(0, min(wanted, available_cpus()))
