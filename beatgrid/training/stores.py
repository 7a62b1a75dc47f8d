"""What a model trains on: its input and target stores, and the track table that splits them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..data.dataset import Augment, FrameDataset, load_frame_dataset, split_track_ids
from ..data.store import without_dropped
from .config import TrainConfig

__all__ = ["TrainingStores"]


@dataclass
class TrainingStores:
    """The HDF5 stores a model trains on, and the track table whose ``split`` column picks its tracks.

    ``inputs``: the model's input stores, every shard (``/tracks/<id>/mel`` ``[T, n_mels]`` for
    the CRNN, ``/tracks/<id>/activations`` ``[T, 2]`` for the LTM); ``targets``: the target
    stores (``/tracks/<id>/beat``, ``/downbeat`` ``[T]``); ``tracks_csv``: the index, or any
    table with ``track_id`` and ``split`` columns. Paths are kept as strings.
    """

    inputs: Sequence[str | os.PathLike]
    targets: Sequence[str | os.PathLike]
    tracks_csv: str | os.PathLike

    def __post_init__(self) -> None:
        self.inputs = [str(p) for p in self.inputs]
        self.targets = [str(p) for p in self.targets]
        self.tracks_csv = str(self.tracks_csv)

    def split_ids(self) -> dict[str, list[str]]:
        """``train``/``val``/``test`` -> the table's track ids (in file order), without the tracks
        that a job writing one of the stores left out."""
        paths = [*self.inputs, *self.targets]
        return {split: without_dropped(ids, paths) for split, ids in split_track_ids(self.tracks_csv).items()}

    def datasets(
        self,
        input_name: str,
        train_ids: Sequence[str],
        val_ids: Sequence[str],
        train_cfg: TrainConfig,
        memory_budget_gb: float,
        augment: Augment | None = None,
    ) -> tuple[FrameDataset, FrameDataset | None]:
        """The training set (random crops of ``train_cfg.crop_frames``, augmented by ``augment``,
        every frame covered once per epoch) and the validation set (whole tracks; None without
        ``val_ids``), reading ``/tracks/<id>/<input_name>`` from the input stores."""
        train_set = load_frame_dataset(
            self.inputs, input_name, self.targets, train_ids, memory_budget_gb=memory_budget_gb,
            crop_frames=train_cfg.crop_frames, seed=train_cfg.seed, augment=augment,
        )
        train_set.cover_frames_per_epoch()
        val_set = (
            load_frame_dataset(self.inputs, input_name, self.targets, val_ids, memory_budget_gb=memory_budget_gb)
            if val_ids else None
        )
        return train_set, val_set
