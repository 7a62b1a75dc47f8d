"""What a training run is told (:class:`TrainConfig`) and what it reports (:class:`TrainResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..models.losses import LOSSES

__all__ = ["TrainConfig", "TrainResult", "HISTORY_COLUMNS"]

#: Columns of history.csv.
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_beat_f", "val_downbeat_f", "val_score", "lr",
                   "seconds", "frames_per_s")


@dataclass
class TrainConfig:
    """Training settings (the non-architecture keys of the ``crnn:`` / ``ltm:`` blocks).

    ``warmup_epochs`` may be fractional. ``pos_weight``: ``"auto"`` (negatives /
    positives per output in the training targets), a number, a list per output, or
    None (1). ``loss``: ``bce`` or ``shift_tolerant`` (with ``shift_tolerance_frames``).
    ``peak_threshold``: threshold of the validation peak picking. ``freeze``: prefixes of
    parameter names kept fixed (fine-tuning; e.g. ``["blocks"]``, the CRNN's convolutional
    front end); each must name at least one parameter. ``keep_norm_statistics``: keep every
    BatchNorm layer's running statistics as they are (fine-tuning on a few tracks, where
    updating them towards those tracks costs accuracy). An epoch is one pass
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
    keep_norm_statistics: bool = False

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
    """What :func:`beatgrid.training.train` did. ``history`` has one dict per epoch
    (HISTORY_COLUMNS)."""

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
