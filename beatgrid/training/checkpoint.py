"""checkpoint.pt: what a run is (its identity), and the state it resumes from.

A checkpoint is written after every epoch (model, optimizer, scheduler, scaler, RNG
states, history, the best epoch so far and the early-stopping counter). A run resumes
from it only when its identity matches: the same result-changing settings, model, initial
weights and data, byte for byte; anything else starts afresh and says so in the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..models import atomic_torch_save, build_model, save_model
from .config import TrainConfig
from .selection import BestEpoch

__all__ = ["CHECKPOINT_NAME", "CHECKPOINT_VERSION", "run_identity", "Checkpoint", "Resumed", "export_best_model"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
# 2: data fingerprints hash the arrays' bytes; 3: the best epoch is chosen by selection_score
# (beat and downbeat F), no longer by beat F alone
CHECKPOINT_VERSION = 3


def dataset_fingerprint(dataset: Dataset | None) -> str | None:
    """BLAKE2b over the exact content a dataset serves, so that any change of it
    (a beat moved by one frame keeps shapes and sums) restarts training.

    A dataset may define ``content_fingerprint() -> str`` (e.g. one that reads its
    arrays on demand and keeps checksums); otherwise its ``inputs`` and ``targets``
    mappings are hashed byte for byte per track (id, dtype, shape, bytes) with
    ``has_downbeats``, or, when it exposes neither, every item it serves. The crop and
    augmentation settings are included.
    """
    if dataset is None:
        return None
    own = getattr(dataset, "content_fingerprint", None)
    if callable(own):
        return str(own())
    digest = hashlib.blake2b(digest_size=20)

    def update(track_id: str, *arrays: Any) -> None:
        digest.update(f"{track_id}\0".encode())
        for array in arrays:
            array = np.ascontiguousarray(np.asarray(array))
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.reshape(-1).view(np.uint8))

    inputs = getattr(dataset, "inputs", None)
    targets = getattr(dataset, "targets", None)
    track_ids = getattr(dataset, "track_ids", None)
    if isinstance(inputs, Mapping) and isinstance(targets, Mapping) and track_ids is not None:
        for tid in track_ids:
            update(str(tid), inputs[tid], targets[tid])
    else:
        for index in range(len(dataset)):
            x, y, tid = dataset[index][:3]
            update(str(tid), x, y)
    has_downbeats = getattr(dataset, "has_downbeats", None)
    if isinstance(has_downbeats, Mapping):
        digest.update(repr(sorted((str(k), bool(v)) for k, v in has_downbeats.items())).encode())
    for name in ("crop_frames", "crops_per_track", "seed", "augment"):
        digest.update(f"{name}={getattr(dataset, name, None)!r}\n".encode())
    return digest.hexdigest()


def state_fingerprint(model: nn.Module) -> str:
    """SHA-1 of a model's parameters and buffers (its initial state identifies a run)."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run_identity(cfg: TrainConfig, model: nn.Module, train_set: Dataset,
                 val_set: Dataset | None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: version, result-changing settings,
    model kind, sizes and initial weights (call before training), data fingerprints."""
    return {
        "version": CHECKPOINT_VERSION,
        "train_config": cfg.result_dict(),
        "model_kind": getattr(model, "model_kind", type(model).__name__),
        "model_config": json.loads(json.dumps(getattr(model, "model_config", {}), default=str)),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "initial_state": state_fingerprint(model),
        "train_data": dataset_fingerprint(train_set),
        "val_data": dataset_fingerprint(val_set),
    }


def rng_states() -> dict[str, Any]:
    """The global generators' states (python, numpy, torch, CUDA when present)."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _read(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None (logged) when it cannot be read."""
    try:
        # Our own file, with RNG states (numpy arrays, tuples): not weights-only.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign file: start afresh
        log.warning("cannot read %s: %s", path, exc)
        return None


@dataclass
class Resumed:
    """Where a run stands: after ``epoch`` (0: nothing done), its history, best epoch and
    whether training had finished."""

    epoch: int
    history: list[dict[str, float]]
    best: BestEpoch
    finished: bool


@dataclass
class Checkpoint:
    """The checkpoint file of one run (``path``), valid for runs of ``identity``."""

    path: Path
    identity: dict[str, Any]

    def resume(self, model: nn.Module, optimizers: Mapping[str, Any], patience: int) -> Resumed:
        """Restore ``model``, ``optimizers`` (``optimizer``, ``scheduler``, ``scaler``: objects
        with ``load_state_dict``; a missing ``scaler`` state is skipped) and the RNG
        states from the file when it matches the identity; else start afresh."""
        fresh = Resumed(epoch=0, history=[], best=BestEpoch(patience), finished=False)
        if not self.path.exists():
            return fresh
        checkpoint = _read(self.path)
        if checkpoint is None or checkpoint.get("identity") != self.identity:
            why = "unreadable" if checkpoint is None else "made with another config or data"
            log.warning("ignoring %s (%s): training from scratch", self.path, why)
            return fresh
        model.load_state_dict(checkpoint["model"])
        for name, target in optimizers.items():
            if checkpoint.get(name):
                target.load_state_dict(checkpoint[name])
        set_rng_states(checkpoint["rng"])
        log.info("resuming from %s after epoch %d", self.path, checkpoint["epoch"])
        return Resumed(epoch=checkpoint["epoch"], history=checkpoint["history"],
                       best=BestEpoch.from_checkpoint(patience, checkpoint), finished=checkpoint["finished"])

    def save(self, model: nn.Module, optimizers: Mapping[str, Any], state: Resumed,
             model_meta: Mapping[str, Any]) -> None:
        """Write the state after ``state.epoch`` (atomically: a kill leaves the previous one);
        ``model_meta``: the model.pt entries of the best epoch so far, for
        :func:`export_best_model`."""
        atomic_torch_save({
            "identity": self.identity, "epoch": state.epoch, "model": model.state_dict(),
            **{name: target.state_dict() for name, target in optimizers.items()},
            "rng": rng_states(), "history": state.history, **state.best.checkpoint_entries(),
            "finished": state.finished, "model_meta": dict(model_meta),
        }, self.path)



def export_best_model(checkpoint_path: str | Path, model_path: str | Path) -> Path:
    """Write the best epoch so far of a training (finished or not) from its checkpoint.pt
    to ``model_path``: the model.pt that training writes when it finishes, had it stopped
    after the checkpoint's epoch. Training itself writes model.pt only when it has finished.

    Raises ValueError naming the file when it holds no best epoch to export (unreadable,
    not a training checkpoint, or written by a beatgrid without ``model_meta``).
    """
    checkpoint_path, model_path = Path(checkpoint_path), Path(model_path)
    checkpoint = _read(checkpoint_path) if checkpoint_path.is_file() else None
    best = (checkpoint or {}).get("best") or {}
    if best.get("state") is None or "model_meta" not in checkpoint:
        raise ValueError(f"{checkpoint_path}: no best epoch with its model metadata to export "
                         "(not a training checkpoint, unreadable, or from an older beatgrid)")
    identity = checkpoint["identity"]
    model = build_model(identity["model_kind"], identity["model_config"])
    model.load_state_dict(best["state"])
    save_model(model_path, model, checkpoint["model_meta"])
    log.info("%s: epoch %d of %s (best so far after epoch %d)", model_path, best["epoch"], checkpoint_path,
             checkpoint["epoch"])
    return model_path
