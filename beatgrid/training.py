"""The one trainer for every beatgrid model (the CRNN over mels, the LTM over activations).

:func:`train` fits any module mapping ``[B, T, F]`` inputs to ``[B, T, 2]`` beat/downbeat
logits on a dataset of ``(inputs [T, F], targets [T, 2], track_id)`` items
(:class:`beatgrid.data.dataset.FrameDataset`):

- batches of random crops (the dataset crops; the trainer pads with ``collate_padded``),
  a loss masked on padding (:mod:`beatgrid.models.losses`) with class-imbalance weights,
  downbeat loss switched off for tracks annotated without downbeats;
- AdamW, linear warm-up then cosine decay (per step), gradient clipping, mixed
  precision (``torch.autocast`` + ``GradScaler``) on CUDA only;
- seeded (python, numpy, torch); on CPU two runs give identical weights;
- validation on whole tracks after every epoch: loss, and mir_eval F-measure of the
  beats (and downbeats) found by peak picking the activations;
- ``model.pt`` (:func:`beatgrid.models.save_model`), written only when training has
  finished, holds the best epoch by the mean of validation beat F and downbeat F
  (:func:`selection_score`; ties: lower validation loss), so an epoch that finds the beats
  but not the metre is not kept; early stopping after ``patience`` epochs without
  improvement;
- ``checkpoint.pt`` after every epoch (model, optimizer, scheduler, scaler, RNG states,
  history, the best state so far, early-stopping counter): re-running with the same config and data resumes
  from it; anything else starts afresh and says so in the log;
- ``history.csv`` (one row per epoch) and ``curves.png``; a tqdm progress bar on a TTY.

A model may take ``forward(x, lengths)``; it then gets the valid length of every row
(the CRNN uses it to make padded batches exact). Otherwise it gets ``forward(x)``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from .data.augment import target_event_frames
from .io import atomic_write, atomic_write_text
from .models import atomic_torch_save, save_model
from .models.losses import LOSSES, estimate_pos_weight, make_loss

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "selection_score",
           "seed_everything", "resolve_device", "lr_factor", "freeze_parameters", "HISTORY_COLUMNS"]

log = logging.getLogger(__name__)

#: Columns of history.csv.
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_beat_f", "val_downbeat_f", "val_score", "lr",
                   "seconds", "frames_per_s")

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
# 2: data fingerprints hash the arrays' bytes; 3: the best epoch is chosen by selection_score
# (beat and downbeat F), no longer by beat F alone
CHECKPOINT_VERSION = 3


@dataclass
class TrainConfig:
    """Training settings (the non-architecture keys of the ``crnn:`` / ``ltm:`` blocks).

    ``warmup_epochs`` may be fractional. ``pos_weight``: ``"auto"`` (negatives /
    positives per output in the training targets), a number, a list per output, or
    None (1). ``loss``: ``bce`` or ``shift_tolerant`` (with ``shift_tolerance_frames``).
    ``peak_threshold``: threshold of the validation peak picking. ``freeze``: prefixes of
    parameter names kept fixed (fine-tuning; e.g. ``["blocks"]``, the CRNN's convolutional
    front end); each must name at least one parameter. An epoch is one pass
    over the training set's items (``FrameDataset(crops_per_track=...)`` sets how many
    crops of each track that is).
    """

    epochs: int = 25
    batch_size: int = 8
    crop_frames: int | None = 400
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    patience: int = 8
    pos_weight: float | str | list[float] | None = "auto"
    loss: str = "bce"
    shift_tolerance_frames: int = 3
    peak_threshold: float = 0.5
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_workers: int | None = None  #: DataLoader workers; None: automatic (:func:`loader_workers`)
    freeze: list[str] = field(default_factory=list)

    #: Keys that do not change the result of a run (ignored when matching a checkpoint).
    RUNTIME_KEYS = ("device", "num_workers")

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.batch_size}")
        self.freeze = [str(prefix) for prefix in self.freeze or []]
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if isinstance(self.pos_weight, str) and self.pos_weight != "auto":
            raise ValueError(f"pos_weight must be 'auto', a number or a list, got "
                             f"{self.pos_weight!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or mps, got {self.device!r}")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> "TrainConfig":
        """Take the training keys of a config block; model keys (sizes, kind, ...) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """The settings that change the trained weights (for matching checkpoints)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUNTIME_KEYS}


@dataclass
class TrainResult:
    """What :func:`train` did. ``history`` has one dict per epoch (HISTORY_COLUMNS)."""

    model_path: Path
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]]
    epochs_run: int
    stopped_early: bool
    resumed_from_epoch: int | None
    device: str
    n_parameters: int
    pos_weight: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (CUDA included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU.

    Raises:
        DeviceUnavailableError: CUDA or MPS asked for and absent (a CPU-only torch build,
            no GPU or driver), or a device name torch does not know.
    """
    from .errors import DeviceUnavailableError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        build = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise DeviceUnavailableError(f"device {device!r} requested but {build} "
                                     "(use device auto or cpu)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError("device 'mps' requested but MPS is not available")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise DeviceUnavailableError(f"unknown device {device!r} (use auto, cpu or cuda)") from exc


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


def loader_workers(requested: int | None, on_demand: bool = False) -> int:
    """DataLoader worker processes: ``requested``, or when None none for data in memory
    and 2 for data read from the stores on demand; never more than the CPUs available."""
    from .threads import available_cpus

    wanted = (2 if on_demand else 0) if requested is None else int(requested)
    return max(0, min(wanted, available_cpus()))


def _accepts_lengths(model: nn.Module) -> bool:
    try:
        return "lengths" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _collate_fn() -> Callable:
    from .data.dataset import collate_padded

    return collate_padded


def _dataset_targets(dataset: Dataset) -> dict[str, np.ndarray] | None:
    """Whole-track targets {track_id: [T, C]} if the dataset exposes them."""
    targets = getattr(dataset, "targets", None)
    track_ids = getattr(dataset, "track_ids", None)
    if isinstance(targets, Mapping) and track_ids is not None:
        return {tid: np.asarray(targets[tid]) for tid in track_ids}
    return None


def _has_downbeats(dataset: Dataset | None) -> dict[str, bool] | None:
    """Per track: are downbeats annotated? The dataset's ``has_downbeats`` where it has
    one; else from whole-track targets (beats but no downbeat at all: not annotated)."""
    if dataset is None:
        return None
    known = getattr(dataset, "has_downbeats", None)
    if isinstance(known, Mapping):
        return dict(known)
    targets = _dataset_targets(dataset)
    if targets is None:
        return None
    return {tid: target.shape[1] < 2 or bool(np.any(target[:, 1] > 0)) or not np.any(target[:, 0] > 0)
            for tid, target in targets.items()}


def _output_mask(targets: torch.Tensor, track_ids: Sequence[str],
                 has_downbeats: Mapping[str, bool] | None) -> torch.Tensor | None:
    """[B, C] mask switching the downbeat output off for tracks without downbeats."""
    if targets.shape[-1] < 2:
        return None
    mask = torch.ones(targets.shape[0], targets.shape[-1], device=targets.device)
    for row, tid in enumerate(track_ids):
        if has_downbeats is not None and tid in has_downbeats:
            annotated = has_downbeats[tid]
        else:  # crop-level guess when the whole track is not known
            annotated = bool((targets[row, :, 1] > 0).any()) or not bool((targets[row, :, 0] > 0).any())
        if not annotated:
            mask[row, 1] = 0.0
    return mask


def _pick_peaks(activation: np.ndarray, fps: float, threshold: float) -> np.ndarray:
    """Beat times (s) of an activation [T]: the library's peak picking."""
    from .postprocessing import pick_peaks

    return np.asarray(pick_peaks(activation, fps, threshold=threshold), dtype=float)


def _f_measure(reference: np.ndarray, estimated: np.ndarray) -> float:
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(mir_eval.beat.f_measure(np.asarray(reference, float),
                                             np.asarray(estimated, float)))


def _dataset_fingerprint(dataset: Dataset | None) -> str | None:
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


def _state_fingerprint(model: nn.Module) -> str:
    """SHA-1 of a model's parameters and buffers (its initial state identifies a run)."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(),
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Mapping[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---------------------------------------------------------------------------- evaluation
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
    collate = _collate_fn()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    with_lengths = _accepts_lengths(model)
    has_downbeats = _has_downbeats(dataset)
    total_loss, total_frames = 0.0, 0
    beat_f, downbeat_f = [], []
    for x, y, track_ids, lengths in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            logits = model(x, lengths) if with_lengths else model(x)
        n_valid = int(lengths.sum())
        if loss_fn is not None:
            mask = _output_mask(y, track_ids, has_downbeats)
            total_loss += float(loss_fn(logits, y, lengths.to(device), mask)) * n_valid
        total_frames += n_valid
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        targets = y.cpu().numpy()
        for row, length in enumerate(lengths.tolist()):
            act, ref = probs[row, :length], targets[row, :length]
            beat_f.append(_f_measure(target_event_frames(ref[:, 0]) / fps,
                                     _pick_peaks(act[:, 0], fps, threshold)))
            annotated = True if has_downbeats is None else has_downbeats.get(track_ids[row], True)
            if ref.shape[1] > 1 and annotated and np.any(ref[:, 1] > 0):
                downbeat_f.append(_f_measure(target_event_frames(ref[:, 1]) / fps,
                                             _pick_peaks(act[:, 1], fps, threshold)))
    model.train(was_training)
    return {
        "loss": total_loss / total_frames if loss_fn is not None and total_frames else math.nan,
        "beat_f": float(np.mean(beat_f)) if beat_f else math.nan,
        "downbeat_f": float(np.mean(downbeat_f)) if downbeat_f else math.nan,
    }


def selection_score(beat_f: float, downbeat_f: float) -> float:
    """How good an epoch is, for choosing the one kept: the mean of validation beat F
    and downbeat F, so a model that has not learned the metre scores at most half.
    Beat F alone when no validation track has annotated downbeats (``downbeat_f`` NaN);
    -inf when beat F is missing."""
    beat = _finite(beat_f)
    if not math.isfinite(beat):
        return -math.inf
    downbeat = _finite(downbeat_f, math.nan)
    return beat if math.isnan(downbeat) else 0.5 * (beat + downbeat)


# ---------------------------------------------------------------------------- outputs
def _write_history(out_dir: Path, history: list[dict[str, float]]) -> None:
    import pandas as pd

    frame = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    atomic_write_text(out_dir / "history.csv", frame.to_csv(index=False, float_format="%.6g"))


def plot_curves(history: list[dict[str, float]], path: str | Path, title: str = "",
                best_epoch: int | None = None) -> None:
    """Loss (train, validation) and validation F-measures per epoch, to ``path`` (PNG);
    a dashed line marks ``best_epoch`` (the weights in model.pt)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_f) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_f.plot(epochs, [r["val_beat_f"] for r in history], "o-", label="beat F")
    ax_f.plot(epochs, [r["val_downbeat_f"] for r in history], "o-", label="downbeat F")
    ax_f.set_xlabel("epoch")
    ax_f.set_ylabel("validation F-measure")
    ax_f.set_ylim(0, 1.02)
    ax_f.legend()
    for ax in (ax_loss, ax_f):
        ax.grid(alpha=0.3)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------- training
def _resolve_pos_weight(cfg: TrainConfig, train_set: Dataset,
                        has_downbeats: Mapping[str, bool] | None) -> np.ndarray | None:
    """cfg.pos_weight as an array [C]; "auto": negatives / positives of the training
    targets (downbeats: over the tracks with annotated downbeats only)."""
    if cfg.pos_weight is None:
        return None
    if cfg.pos_weight != "auto":
        return np.asarray(cfg.pos_weight, dtype=np.float32).reshape(-1)
    targets = _dataset_targets(train_set)
    if targets is None:  # no whole tracks exposed: estimate from one pass of items
        targets = {item[2]: np.asarray(item[1]) for item in
                   (train_set[i] for i in range(len(train_set)))}
    weight = estimate_pos_weight(targets.values())
    if has_downbeats is not None and weight.size > 1:
        annotated = [t for tid, t in targets.items() if has_downbeats.get(tid, True)]
        if annotated:
            weight[1] = estimate_pos_weight(annotated)[1]
    return weight


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

    Returns the :class:`TrainResult`; ``model`` holds the best epoch's weights.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    use_amp = bool(cfg.amp) and device.type == "cuda"
    seed_everything(cfg.seed)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    frozen = freeze_parameters(model, cfg.freeze)
    if frozen:
        log.info("frozen: %d of %d parameter tensors (%s)", len(frozen), len(list(model.parameters())),
                 ", ".join(cfg.freeze))

    if len(train_set) == 0:
        raise ValueError("training set is empty")
    has_downbeats = _has_downbeats(train_set)
    pos_weight = _resolve_pos_weight(cfg, train_set, has_downbeats)
    loss_fn = make_loss(cfg.loss, pos_weight, cfg.shift_tolerance_frames).to(device)
    with_lengths = _accepts_lengths(model)

    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, cfg.min_lr_ratio))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    kind = getattr(model, "model_kind", type(model).__name__)
    identity = {
        "version": CHECKPOINT_VERSION,
        "train_config": cfg.result_dict(),
        "model_kind": kind,
        "model_config": json.loads(json.dumps(getattr(model, "model_config", {}), default=str)),
        "n_parameters": n_params,
        "initial_state": _state_fingerprint(model),
        "train_data": _dataset_fingerprint(train_set),
        "val_data": _dataset_fingerprint(val_set),
    }

    def model_file_meta(best: dict[str, Any]) -> dict[str, Any]:
        meta = dict(model_meta or {})
        meta.setdefault("features", {"fps": val_fps})
        meta.update(train_config=cfg.to_dict(), best_epoch=best["epoch"],
                    val_metrics=best["metrics"],
                    # what the loss weighted positives by: decoders undo it (calibrate)
                    pos_weight=None if pos_weight is None else [float(w) for w in pos_weight])
        return meta

    history: list[dict[str, float]] = []
    best = {"epoch": 0, "score": (-math.inf, -math.inf), "metrics": {}, "state": None}
    bad_epochs = 0
    start_epoch = 1
    finished = False
    resumed_from = None
    checkpoint_path = out_dir / CHECKPOINT_NAME
    if checkpoint_path.exists():
        checkpoint = _load_checkpoint(checkpoint_path)
        if checkpoint is not None and checkpoint.get("identity") == identity:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            if use_amp and checkpoint.get("scaler"):
                scaler.load_state_dict(checkpoint["scaler"])
            _set_rng_states(checkpoint["rng"])
            history = checkpoint["history"]
            best = checkpoint["best"]
            best["score"] = tuple(best["score"])
            bad_epochs = checkpoint["bad_epochs"]
            finished = checkpoint["finished"]
            resumed_from = checkpoint["epoch"]
            start_epoch = resumed_from + 1
            log.info("resuming from %s after epoch %d", checkpoint_path, resumed_from)
        else:
            why = "unreadable" if checkpoint is None else "made with another config or data"
            log.warning("ignoring %s (%s): training from scratch", checkpoint_path, why)

    log.info("training %s: %d parameters on %s%s; %d training items, %d steps per epoch, "
             "pos_weight %s, loss %s", kind, n_params, device, " with AMP" if use_amp else "",
             len(train_set), steps_per_epoch,
             None if pos_weight is None else np.round(pos_weight, 2).tolist(), cfg.loss)

    collate = _collate_fn()
    workers = loader_workers(cfg.num_workers, on_demand=getattr(train_set, "on_demand", False))
    show = progress and sys.stderr.isatty()
    epoch_bar = tqdm(range(start_epoch, cfg.epochs + 1), desc=f"train {kind}", unit="epoch",
                     disable=not show or finished, initial=start_epoch - 1, total=cfg.epochs)
    epoch = start_epoch - 1
    for epoch in epoch_bar:
        if finished:
            break
        started = time.perf_counter()
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        sampler = RandomSampler(train_set, generator=generator)
        loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                            collate_fn=collate, num_workers=workers,
                            pin_memory=device.type == "cuda")
        model.train()
        loss_sum, frames = 0.0, 0
        for x, y, track_ids, lengths in tqdm(loader, desc=f"epoch {epoch}", leave=False,
                                             disable=not show, total=steps_per_epoch):
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            mask = _output_mask(y, track_ids, has_downbeats)
            with torch.autocast(device.type, enabled=use_amp):
                logits = model(x, lengths) if with_lengths else model(x)
            loss = loss_fn(logits.float(), y, lengths.to(device), mask)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss is {float(loss)} at epoch {epoch}; "
                                         "lower lr or check the inputs for NaN/inf")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            n_valid = int(lengths.sum())
            loss_sum += float(loss.detach()) * n_valid
            frames += n_valid
        train_seconds = time.perf_counter() - started

        if val_set is not None and len(val_set) > 0:
            metrics = evaluate(model, val_set, val_fps, loss_fn, device, cfg.batch_size,
                               cfg.peak_threshold, use_amp)
        else:
            metrics = {"loss": math.nan, "beat_f": math.nan, "downbeat_f": math.nan}
        train_loss = loss_sum / max(frames, 1)
        row = {
            "epoch": epoch, "train_loss": train_loss, "val_loss": metrics["loss"],
            "val_beat_f": metrics["beat_f"], "val_downbeat_f": metrics["downbeat_f"],
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
            "frames_per_s": frames / train_seconds if train_seconds > 0 else math.nan,
        }
        if val_set is not None and len(val_set) > 0:
            row["val_score"] = selection_score(metrics["beat_f"], metrics["downbeat_f"])
            score = (row["val_score"], -_finite(metrics["loss"], math.inf))
        else:
            row["val_score"] = math.nan
            score = (0.0, float(epoch))  # no validation: keep the latest epoch
        history.append(row)
        if score > best["score"]:
            best = {"epoch": epoch, "score": score,
                    "metrics": {"val_loss": metrics["loss"], "val_beat_f": metrics["beat_f"],
                                "val_downbeat_f": metrics["downbeat_f"], "val_score": row["val_score"],
                                "train_loss": train_loss},
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
            bad_epochs = 0
        else:
            bad_epochs += 1
        finished = epoch == cfg.epochs or (cfg.patience > 0 and bad_epochs >= cfg.patience)

        log.info("epoch %d/%d: train loss %.4f, val loss %.4f, val beat F %.3f, downbeat F "
                 "%.3f, lr %.2e, %.1f s, %.0f frames/s%s", epoch, cfg.epochs, train_loss,
                 metrics["loss"], metrics["beat_f"], metrics["downbeat_f"], row["lr"],
                 row["seconds"], row["frames_per_s"], " (best)" if bad_epochs == 0 else "")
        epoch_bar.set_postfix(loss=f"{train_loss:.4f}", val_f=f"{metrics['beat_f']:.3f}")
        atomic_torch_save({
            "identity": identity, "epoch": epoch, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "rng": _rng_states(), "history": history,
            "best": {**best, "score": list(best["score"])}, "bad_epochs": bad_epochs,
            "finished": finished,
        }, checkpoint_path)
        _write_history(out_dir, history)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        if finished:
            if epoch < cfg.epochs:
                log.info("early stop after epoch %d: no improvement for %d epochs (best: "
                         "epoch %d)", epoch, bad_epochs, best["epoch"])
            break
    epoch_bar.close()

    # Written once, when training has finished: a model.pt is the sign of a finished
    # training (Snakemake takes an existing output as up to date, and a process it stopped
    # may outlive the cleanup of its outputs). The best state so far lives in checkpoint.pt.
    model.load_state_dict(best["state"])
    save_model(out_dir / MODEL_NAME, model, model_file_meta(best))
    _write_history(out_dir, history)
    plot_curves(history, out_dir / "curves.png", title=f"{kind} training (best epoch {best['epoch']})",
                best_epoch=best["epoch"])
    epochs_run = history[-1]["epoch"] if history else 0
    return TrainResult(
        model_path=out_dir / MODEL_NAME, best_epoch=best["epoch"], best_metrics=best["metrics"],
        history=history, epochs_run=epochs_run,
        stopped_early=epochs_run < cfg.epochs, resumed_from_epoch=resumed_from,
        device=str(device), n_parameters=n_params,
        pos_weight=[] if pos_weight is None else [float(w) for w in pos_weight],
    )


def _finite(value: float, default: float = -math.inf) -> float:
    return value if value is not None and math.isfinite(value) else default


def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    try:
        # Our own file, with RNG states (numpy arrays, tuples): not weights-only.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign file: start afresh
        log.warning("cannot read %s: %s", path, exc)
        return None
