"""Torch datasets over frame-level inputs (log-mels or activations) and targets.

Training reads the HDF5 stores into memory (:func:`load_frame_dataset`) and serves
whole tracks or random crops from there; stores larger than a memory budget are read on
demand instead, crop by crop (:class:`beatgrid.data.store.StoreArrays`), with the same items. No audio is
decoded during training. Items are ``(inputs [T, F] float32, targets [T, 2] float32, track_id)`` and
:func:`collate_padded` zero-pads a batch and returns the true lengths, as in seed 000.

Crops are random but reproducible: item ``i`` of epoch ``e`` draws from a generator
seeded with ``(seed, e, i)``, so a run gives the same crops whatever the number of
DataLoader workers, and each epoch different ones (call :meth:`FrameDataset.set_epoch`
before each epoch).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from beatgrid.data.store import StoreArrays, read_attrs, read_store, read_store_track_attrs

log = logging.getLogger(__name__)

__all__ = [
    "Augment",
    "FrameDataset",
    "collate_padded",
    "padding_mask",
    "load_frame_dataset",
    "MelNormalizer",
    "DEFAULT_MEMORY_BUDGET_GB",
]

#: Training data up to this size (GB of stored arrays) is read into memory; larger stores
#: are read on demand (config: ``crnn.memory_budget_gb`` / ``ltm.memory_budget_gb``).
DEFAULT_MEMORY_BUDGET_GB = 4.0

#: ``augment(inputs [T, F] float32, targets [T, 2] float32, rng) -> (inputs, targets)``:
#: may modify its (private) arrays in place and may change T (e.g. a tempo change),
#: as long as inputs and targets keep the same number of frames. One whose
#: ``needs_background`` is true also gets ``background=`` another track's inputs.
Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], "tuple[np.ndarray, np.ndarray]"]


class FrameDataset(Dataset):
    """Whole tracks or random crops of frame-aligned ``inputs`` and ``targets``.

    Args:
        inputs: ``{track_id: [T, F]}`` (any float dtype; float16 mels stay float16 in
            memory and are converted per item); arrays in memory or
            :class:`beatgrid.data.store.TrackArray` views of a store, read on demand.
        targets: ``{track_id: [T, 2]}`` beat and downbeat targets.
        track_ids: the tracks to serve, in order.
        crop_frames: crop length in frames; None serves whole tracks. Tracks shorter
            than the crop are served whole (the collate pads them).
        seed: base seed of the crop and augmentation generators.
        augment: optional :data:`Augment`, applied after cropping with the item's generator.
        crops_per_track: items per track and epoch (several random crops of long tracks).

    Attributes:
        has_downbeats: ``{track_id: bool}``; False for tracks whose downbeat target is
            unannotated (all zero) and should be masked in the loss. All True unless given.
    """

    def __init__(
        self,
        inputs: Mapping[str, np.ndarray],
        targets: Mapping[str, np.ndarray],
        track_ids: Sequence[str],
        crop_frames: int | None = None,
        seed: int = 0,
        augment: Augment | None = None,
        crops_per_track: int = 1,
        has_downbeats: Mapping[str, bool] | None = None,
    ):
        if crop_frames is not None and (int(crop_frames) != crop_frames or crop_frames < 1):
            raise ValueError(f"crop_frames must be a positive integer or None, got {crop_frames!r}")
        if int(crops_per_track) != crops_per_track or crops_per_track < 1:
            raise ValueError(f"crops_per_track must be a positive integer, got {crops_per_track!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.track_ids = list(track_ids)
        if len(set(self.track_ids)) != len(self.track_ids):
            raise ValueError("track_ids contains duplicates")
        for track_id in self.track_ids:
            if track_id not in inputs:
                raise KeyError(f"track {track_id!r} has no inputs")
            if track_id not in targets:
                raise KeyError(f"track {track_id!r} has no targets")
            x, y = inputs[track_id], targets[track_id]
            if x.ndim != 2:
                raise ValueError(f"track {track_id!r}: inputs must be [T, F], got shape {x.shape}")
            if y.ndim != 2 or y.shape[1] != 2:
                raise ValueError(f"track {track_id!r}: targets must be [T, 2], got shape {y.shape}")
            if x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"track {track_id!r}: inputs have {x.shape[0]} frames but targets {y.shape[0]}"
                )
        self.inputs = {t: inputs[t] for t in self.track_ids}
        self.targets = {t: targets[t] for t in self.track_ids}
        self.crop_frames = None if crop_frames is None else int(crop_frames)
        self.seed = int(seed)
        self.augment = augment
        self.crops_per_track = int(crops_per_track)
        self.has_downbeats = {t: bool((has_downbeats or {}).get(t, True)) for t in self.track_ids}
        self.epoch = 0
        #: True when ``inputs`` are read from the stores per item (:func:`load_frame_dataset`).
        self.on_demand = False

    def __len__(self) -> int:
        return len(self.track_ids) * self.crops_per_track

    def set_epoch(self, epoch: int) -> None:
        """Select the crops (and augmentations) of ``epoch``; call before iterating.
        With ``persistent_workers=True`` DataLoader workers keep their own copy, so
        recreate the loader (the default) for this to take effect."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def n_frames(self, track_id: str) -> int:
        """Length of a whole track in frames."""
        return int(self.inputs[track_id].shape[0])

    def cover_frames_per_epoch(self) -> int:
        """Set ``crops_per_track`` so that an epoch serves about every frame once.

        Long tracks then give several crops per epoch instead of one. Returns the new
        value (unchanged, 1 or more, when the dataset serves whole tracks).
        """
        if self.crop_frames and self.track_ids:
            mean_frames = sum(map(self.n_frames, self.track_ids)) / len(self.track_ids)
            self.crops_per_track = max(1, math.ceil(mean_frames / self.crop_frames))
        return self.crops_per_track

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def _bounds(self, index: int, rng: np.random.Generator) -> tuple[str, int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        track_id = self.track_ids[index // self.crops_per_track]
        total = self.n_frames(track_id)
        if self.crop_frames is None or total <= self.crop_frames:
            return track_id, 0, total
        start = int(rng.integers(0, total - self.crop_frames + 1))
        return track_id, start, start + self.crop_frames

    def crop_bounds(self, index: int) -> tuple[str, int, int]:
        """``(track_id, start_frame, stop_frame)`` that item ``index`` serves this epoch."""
        return self._bounds(index, self._rng(index))

    def _background(self, own: int, rng: np.random.Generator) -> np.ndarray:
        """Float32 inputs of a random other track than ``track_ids[own]`` (that one when it is
        the only one): a random window of twice the crop length (room for a tempo change), or
        the whole track."""
        n_tracks = len(self.track_ids)
        pick = own if n_tracks == 1 else int(rng.integers(0, n_tracks - 1))
        pick += int(n_tracks > 1 and pick >= own)
        other = self.track_ids[pick]
        total = self.n_frames(other)
        length = total if self.crop_frames is None else min(total, 2 * self.crop_frames)
        start = int(rng.integers(0, total - length + 1))
        return np.array(self.inputs[other][start:start + length], dtype=np.float32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        rng = self._rng(index)
        track_id, start, stop = self._bounds(index, rng)
        inputs = np.array(self.inputs[track_id][start:stop], dtype=np.float32)
        targets = np.array(self.targets[track_id][start:stop], dtype=np.float32)
        if self.augment is not None:
            extra = {}
            if getattr(self.augment, "needs_background", False):  # e.g. MelAugment(p_mix > 0)
                extra["background"] = self._background(index // self.crops_per_track, rng)
            inputs, targets = self.augment(inputs, targets, rng, **extra)
            if inputs.shape[0] != targets.shape[0]:
                raise ValueError(
                    f"augment returned {inputs.shape[0]} input frames but {targets.shape[0]} "
                    f"target frames for track {track_id!r}"
                )
        return (
            torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)),
            track_id,
        )


def collate_padded(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor, str]],
) -> tuple[torch.Tensor, torch.Tensor, list[str], torch.Tensor]:
    """Zero-pad items to the longest: ``(inputs [B, T, F], targets [B, T, 2], track_ids,
    lengths [B] int64)``, where ``lengths`` are the frames before padding."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    lengths = torch.tensor([item[0].shape[0] for item in batch], dtype=torch.long)
    max_frames = int(lengths.max())
    n_features = batch[0][0].shape[1]
    n_targets = batch[0][1].shape[1]
    inputs = torch.zeros(len(batch), max_frames, n_features, dtype=torch.float32)
    targets = torch.zeros(len(batch), max_frames, n_targets, dtype=torch.float32)
    for i, (x, y, _) in enumerate(batch):
        if x.shape[1] != n_features or y.shape[1] != n_targets:
            raise ValueError(f"item {i} has shape {tuple(x.shape)}/{tuple(y.shape)}, the first "
                             f"{n_features} features / {n_targets} targets")
        inputs[i, : x.shape[0]] = x
        targets[i, : y.shape[0]] = y
    return inputs, targets, [item[2] for item in batch], lengths


def training_folds(tracks_csv: str | os.PathLike, folds: int, seed: int = 0) -> dict[str, int]:
    """Fold of every ``train`` track of a track table (:func:`beatgrid.data.folds.assign_folds`
    with the table's ``group`` column): the one deal that the CRNN's fold models train by
    and the out-of-fold activations read, dealt over the whole split so that a track a
    shard job dropped moves no other track's fold."""
    from beatgrid.data.folds import assign_folds
    from beatgrid.data.tracks import read_index, track_groups

    tracks = read_index(tracks_csv, required=("track_id", "split"))
    return assign_folds(tracks.loc[tracks["split"] == "train", "track_id"], folds, seed, track_groups(tracks))


def split_track_ids(tracks_csv: str | os.PathLike) -> dict[str, list[str]]:
    """``split`` -> track ids (in file order) of a track table with ``track_id`` and ``split``
    columns (``tracks.csv``, or one written for training outside the workflow)."""
    from beatgrid.data.tracks import read_index

    tracks = read_index(tracks_csv, required=("track_id", "split"))
    return {split: tracks.loc[tracks["split"] == split, "track_id"].tolist() for split in ("train", "val", "test")}


def padding_mask(lengths: torch.Tensor, n_frames: int | None = None) -> torch.Tensor:
    """Boolean mask ``[B, n_frames]``: True on the real frames, False on padding.
    ``n_frames`` defaults to ``lengths.max()``."""
    lengths = torch.as_tensor(lengths)
    if n_frames is None:
        n_frames = int(lengths.max()) if lengths.numel() else 0
    return torch.arange(n_frames, device=lengths.device)[None, :] < lengths[:, None]


def _paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [str(paths)]
    return [str(p) for p in paths]


#: File attrs that must agree between the stores of one dataset (the settings that fix
#: frame times and feature meaning); others, such as ``model_sha256`` of out-of-fold
#: activation shards, may differ.
_SETTINGS_ATTRS = ("fps", "sr", "hop_length", "n_fft", "n_mels", "fmin", "fmax", "widen_frames", "widen_value")


def _common_attrs(paths: list[str], what: str) -> dict[str, Any]:
    """The settings attrs of ``paths``; raises if two stores were made with different settings."""
    common: dict[str, Any] | None = None
    first = None
    for path in paths:
        attrs = {k: v for k, v in read_attrs(path).items() if k in _SETTINGS_ATTRS}
        if common is None:
            common, first = attrs, path
            continue
        for key in set(common) & set(attrs):
            a, b = common[key], attrs[key]
            if not np.isclose(float(a), float(b)):
                raise ValueError(f"{what} stores disagree on {key!r}: {a!r} in {first}, {b!r} in {path}")
    return common or {}


def load_frame_dataset(
    input_paths: str | os.PathLike | Iterable[str | os.PathLike],
    input_name: str,
    target_paths: str | os.PathLike | Iterable[str | os.PathLike],
    track_ids: Iterable[str],
    memory_budget_gb: float | None = None,
    **kwargs: Any,
) -> FrameDataset:
    """The ``track_ids`` of HDF5 stores as a :class:`FrameDataset`, in memory or on demand.

    ``input_name`` is the array in the input stores (``"mel"`` or ``"activations"``);
    targets are ``beat`` and ``downbeat`` of the target stores stacked to ``[T, 2]``, and
    the per-track ``has_downbeats`` attr (default True) fills ``dataset.has_downbeats``.
    When inputs and targets take more than ``memory_budget_gb`` GB (None: no limit) they
    stay in the stores and every item reads its crop (:class:`~beatgrid.data.store.StoreArrays`): the same
    items for the same seed, in any number of DataLoader workers; ``dataset.on_demand``
    says which. ``kwargs`` go to :class:`FrameDataset`.

    Raises:
        beatgrid.data.store.StoreError: a track is missing from the stores.
        ValueError: a track's inputs and targets differ in length (naming it), or the
            stores disagree on ``fps``.
    """
    input_paths, target_paths = _paths(input_paths), _paths(target_paths)
    track_ids = list(dict.fromkeys(track_ids))
    input_attrs = _common_attrs(input_paths, "input")
    target_attrs = _common_attrs(target_paths, "target")
    if "fps" in input_attrs and "fps" in target_attrs and not np.isclose(input_attrs["fps"], target_attrs["fps"]):
        raise ValueError(f"inputs are at {input_attrs['fps']} fps but targets at {target_attrs['fps']} fps")
    track_attrs = read_store_track_attrs(target_paths, track_ids)
    kwargs.setdefault("has_downbeats", {t: bool(track_attrs.get(t, {}).get("has_downbeats", True)) for t in track_ids})
    if memory_budget_gb is not None:
        inputs = StoreArrays(input_paths, [input_name], track_ids)
        targets = StoreArrays(target_paths, ["beat", "downbeat"], track_ids)
        size = inputs.nbytes + targets.nbytes
        if size > memory_budget_gb * 1e9:
            for track_id in track_ids:
                if len(inputs[track_id]) != len(targets[track_id]):
                    raise ValueError(
                        f"track {track_id!r}: {input_name} has {len(inputs[track_id])} frames but the targets have "
                        f"{len(targets[track_id])}; the stores were made with different settings"
                    )
            log.info("training data of %d tracks takes %.1f GB, over the memory budget of %g GB: reading crops "
                     "from the stores on demand", len(track_ids), size / 1e9, memory_budget_gb)
            dataset = FrameDataset(inputs, targets, track_ids, **kwargs)
            dataset.on_demand = True
            return dataset
    inputs = read_store(input_paths, input_name, track_ids)
    beats = read_store(target_paths, "beat", track_ids)
    downbeats = read_store(target_paths, "downbeat", track_ids)
    targets = {}
    for track_id in track_ids:
        n_in, n_beat, n_down = len(inputs[track_id]), len(beats[track_id]), len(downbeats[track_id])
        if not n_in == n_beat == n_down:
            raise ValueError(
                f"track {track_id!r}: {input_name} has {n_in} frames but the targets have "
                f"{n_beat} (beat) / {n_down} (downbeat); the stores were made with different settings"
            )
        targets[track_id] = np.stack([beats[track_id], downbeats[track_id]], axis=1).astype(np.float32)
    return FrameDataset(inputs, targets, track_ids, **kwargs)


@dataclass
class MelNormalizer:
    """Per-band standardisation ``(x - mean) / std`` of inputs ``[..., F]``.

    Fit on the training tracks only; ``as_dict()`` is what ``model.pt`` stores as
    ``input_norm``, and ``from_dict`` rebuilds it (None stays None).
    """

    mean: np.ndarray  #: [F] float32
    std: np.ndarray  #: [F] float32, > 0

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"mean has {self.mean.size} bands but std {self.std.size}")
        if not np.all(self.std > 0):
            raise ValueError("std must be positive in every band")

    @classmethod
    def fit(cls, arrays: Iterable[np.ndarray], min_std: float = 1e-3) -> "MelNormalizer":
        """Mean and standard deviation per band over all frames of ``arrays`` (each
        ``[T, F]``), accumulated in float64; ``std`` is floored at ``min_std``."""
        total = 0
        band_sum = band_sq = None
        for array in arrays:
            values = np.asarray(array, dtype=np.float64)
            if values.ndim != 2:
                raise ValueError(f"expected [T, F] arrays, got shape {values.shape}")
            if band_sum is None:
                band_sum = np.zeros(values.shape[1])
                band_sq = np.zeros(values.shape[1])
            elif values.shape[1] != band_sum.size:
                raise ValueError(f"arrays have {band_sum.size} and {values.shape[1]} bands")
            total += values.shape[0]
            band_sum += values.sum(axis=0)
            band_sq += np.square(values).sum(axis=0)
        if not total:
            raise ValueError("cannot fit a normalizer on zero frames")
        mean = band_sum / total
        variance = np.maximum(band_sq / total - mean**2, 0.0)
        return cls(mean, np.maximum(np.sqrt(variance), min_std))

    def __call__(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Standardise ``x`` (numpy or torch, bands last)."""
        if isinstance(x, torch.Tensor):
            mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
            std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device)
            return (x - mean) / std
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def as_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` as plain lists (for ``model.pt`` / JSON)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "MelNormalizer | None":
        """Inverse of :meth:`as_dict`; None gives None."""
        if values is None:
            return None
        return cls(np.asarray(values["mean"]), np.asarray(values["std"]))
