"""Beat and downbeat activations of whole tracks, and their per-shard HDF5 store.

:func:`compute_activations` runs a model over one track's input frames and returns
sigmoid probabilities ``[T, 2]`` float32 at the input's frame rate. Long tracks go
through the model in chunks so memory stays bounded:

- a causal model with a streaming API (``init_state``/``step`` over chunks, like the
  causal :class:`~beatgrid.models.crnn.CRNN`) carries its state from chunk to chunk,
  which gives the one-pass result exactly;
- any other model sees overlapping chunks of ``chunk_frames`` and contributes only the
  centre of each (``overlap_frames`` of context on each inner side), which equals the
  one pass up to the influence of context further than ``overlap_frames`` away
  (below 1e-4 for the CRNN's BiLSTM at the default 10 s of overlap).

The activation stores, one per shard, are all written here, with the model's identity
(kind, SHA-256 of model.pt) in attrs:

- :func:`extract_shard_activations`: ``/tracks/<track_id>/activations`` of a CRNN (or any
  model over input frames) for every track of a mel shard;
- :func:`extract_oof_shard`: out-of-fold CRNN activations (each training track from the fold
  model that did not train on it), the LTM's inputs with ``ltm.input_source: oof``;
- :func:`extract_ltm_shard`: the LTM's activations over a CRNN activation shard.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["activation_attrs", "compute_activations", "extract_shard_activations", "extract_oof_shard",
           "extract_ltm_shard", "write_activation_store", "file_sha256", "chunk_bounds", "load_track_activations",
           "save_track_activations"]

log = logging.getLogger(__name__)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the identity of a model.pt)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_bounds(n_frames: int, chunk_frames: int, overlap_frames: int
                 ) -> list[tuple[int, int, int, int]]:
    """Overlapping chunks covering ``n_frames``: ``(start, stop, keep_start, keep_stop)``.

    The model sees ``[start, stop)`` (at most ``chunk_frames``); frames
    ``[keep_start, keep_stop)`` are taken from it. Kept ranges tile ``[0, n_frames)``
    and every kept frame has ``overlap_frames`` of context on each side unless it is
    near the track's edge.
    """
    if chunk_frames <= 2 * overlap_frames:
        raise ValueError(f"chunk_frames ({chunk_frames}) must exceed twice overlap_frames "
                         f"({overlap_frames})")
    if n_frames <= chunk_frames:
        return [(0, n_frames, 0, n_frames)]
    stride = chunk_frames - 2 * overlap_frames
    bounds = []
    keep_start = 0
    while keep_start < n_frames:
        keep_stop = min(n_frames, keep_start + stride if keep_start else chunk_frames - overlap_frames)
        if n_frames - keep_stop <= overlap_frames:  # close enough to the end: finish here
            keep_stop = n_frames
        start = max(0, keep_start - overlap_frames)
        stop = min(n_frames, keep_stop + overlap_frames)
        if stop - start > chunk_frames:  # last chunk: slide its window back
            start = stop - chunk_frames
        bounds.append((start, stop, keep_start, keep_stop))
        keep_start = keep_stop
    return bounds


def _is_streaming(model: nn.Module) -> bool:
    """Causal models whose ``step`` takes chunks [B, t, F] (the causal CRNN)."""
    from .models.crnn import CRNN

    return isinstance(model, CRNN) and model.causal


@torch.no_grad()
def compute_activations(
    model: nn.Module,
    mel: np.ndarray,
    chunk_frames: int = 6000,
    overlap_frames: int = 500,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Sigmoid activations ``[T, 2]`` float32 of ``model`` over ``mel [T, F]``.

    ``chunk_frames``: most frames per model call (6000 = 2 min at 50 fps);
    ``overlap_frames``: context on each side of a chunk's kept centre (non-causal models).
    The model is put in eval mode and moved to ``device``.
    """
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise ValueError(f"expected input frames [T, F], got shape {mel.shape}")
    device = torch.device(device)
    model.eval().to(device)
    n_frames = mel.shape[0]
    out = np.zeros((n_frames, 2), dtype=np.float32)
    if n_frames == 0:
        return out
    x = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))

    if _is_streaming(model):
        state = model.init_state(1, device)
        for start in range(0, n_frames, chunk_frames):
            stop = min(n_frames, start + chunk_frames)
            logits, state = model.step(x[None, start:stop].to(device), state)
            out[start:stop] = torch.sigmoid(logits[0].float()).cpu().numpy()
        return out

    for start, stop, keep_start, keep_stop in chunk_bounds(n_frames, chunk_frames, overlap_frames):
        logits = model(x[None, start:stop].to(device))
        probs = torch.sigmoid(logits[0].float()).cpu().numpy()
        out[keep_start:keep_stop] = probs[keep_start - start:keep_stop - start]
    return out


def save_track_activations(path: str | Path, activations: np.ndarray, fps: float,
                           pos_weight: Iterable[float] | None = None) -> Path:
    """One track's ``[T, 2]`` activations at ``fps`` as ``.npz`` (``activations``, ``fps`` and,
    when known, ``pos_weight``), for decoding again without the network; atomic."""
    from .io import atomic_write
    from .decoding.peaks import activation_pair

    arrays = {"activations": activation_pair(activations), "fps": np.float64(fps)}
    if pos_weight is not None:
        arrays["pos_weight"] = np.atleast_1d(np.asarray(list(pos_weight), dtype=np.float64))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append .npz to the name
            np.savez(handle, **arrays)

    return atomic_write(path, write)


def load_track_activations(path: str | Path) -> tuple[np.ndarray, float, list[float] | None]:
    """``(activations [T, 2], fps, pos_weight or None)`` from :func:`save_track_activations`'s file."""
    with np.load(path) as data:
        pos_weight = data["pos_weight"].tolist() if "pos_weight" in data else None
        return data["activations"], float(data["fps"]), pos_weight


def _check_features(model_meta: dict, mel_attrs: dict, mel_path: Path, model_path: Path,
                    n_inputs: int | None) -> float:
    """The fps of the mel store, after checking it matches what the model was trained on."""
    features = model_meta.get("features") or {}
    mel_fps = mel_attrs.get("fps")
    if mel_fps is None:
        raise ValueError(f"{mel_path}: the store has no 'fps' attribute")
    model_fps = features.get("fps")
    if model_fps is not None and abs(float(model_fps) - float(mel_fps)) > 1e-6:
        raise ValueError(f"{mel_path}: frames at {mel_fps} fps, but {model_path} was trained on "
                         f"{model_fps} fps")
    for key in ("sr", "hop_length", "n_fft", "n_mels", "fmin", "fmax"):
        if key in features and key in mel_attrs and float(features[key]) != float(mel_attrs[key]):
            raise ValueError(f"{mel_path}: {key}={mel_attrs[key]}, but {model_path} was trained "
                             f"on {key}={features[key]}")
    return float(mel_fps)


def activation_attrs(fps: float, model_meta: dict, model_path: str | Path) -> dict:
    """File attrs of an activation store: ``fps``, the model's identity (``model_kind``,
    ``model_sha256``) and the loss's ``pos_weight`` per output column (1 where the loss
    weighted nothing; decoders undo it with :func:`beatgrid.decoding.peaks.calibrate`)."""
    attrs = {"fps": float(fps), "model_kind": model_meta["kind"], "model_sha256": file_sha256(model_path)}
    if "pos_weight" in model_meta:  # absent only from model files older than the key
        weight = model_meta["pos_weight"]
        attrs["pos_weight"] = np.asarray([1.0, 1.0] if weight is None else weight, dtype=np.float64)
    return attrs


def write_activation_store(out_path: str | Path, attrs: Mapping[str, Any], dropped_from: str | Path,
                           activations: Iterable[tuple[str, np.ndarray]]) -> int:
    """Write an activation store: file ``attrs`` (:func:`activation_attrs`), the tracks the
    job that wrote ``dropped_from`` (the input store) left out, so later stages leave them
    out too, and ``/tracks/<id>/activations`` ``[T, 2]`` per ``(track_id, activations)``,
    atomically (an empty shard gives a valid empty store). Returns the number of tracks."""
    from .data.store import atomic_h5, read_dropped, record_dropped, write_track

    count = 0
    with atomic_h5(out_path, attrs) as h5:
        record_dropped(h5, read_dropped(dropped_from))
        for track_id, track_activations in activations:
            write_track(h5, track_id, {"activations": track_activations})
            count += 1
    return count


def extract_shard_activations(
    model_path: str | Path,
    mel_path: str | Path,
    out_path: str | Path,
    track_ids: Iterable[str] | None = None,
    device: str = "auto",
    progress: bool = True,
    input_name: str = "mel",
    chunk_frames: int = 6000,
    overlap_frames: int = 500,
) -> int:
    """Write the activations of every track (or ``track_ids``) of one input shard.

    Reads ``/tracks/<id>/<input_name>`` from ``mel_path``, writes
    ``/tracks/<id>/activations`` float32 ``[T, 2]`` to ``out_path`` (atomically; an empty
    shard gives a valid empty store) with the file attrs of :func:`activation_attrs`. Returns the number of tracks written.
    """
    import sys

    from tqdm.auto import tqdm

    from .data.store import list_track_ids, read_attrs, read_track_array
    from .models import load_model
    from .device import resolve_device

    model_path, mel_path = Path(model_path), Path(mel_path)
    torch_device = resolve_device(device)
    model, meta = load_model(model_path, map_location=torch_device)
    mel_attrs = read_attrs(mel_path)
    n_inputs = getattr(model, "n_mels", None)
    fps = _check_features(meta, mel_attrs, mel_path, model_path, n_inputs)
    ids = list_track_ids(mel_path) if track_ids is None else list(track_ids)
    attrs = activation_attrs(fps, meta, model_path)
    sha = attrs["model_sha256"]
    show = progress and sys.stderr.isatty()

    def activations() -> Iterator[tuple[str, np.ndarray]]:
        for track_id in tqdm(ids, desc=f"activations {mel_path.stem}", disable=not show):
            mel = read_track_array(mel_path, track_id, input_name)
            if mel.ndim != 2 or (n_inputs is not None and mel.shape[1] != n_inputs):
                raise ValueError(f"{mel_path}: track {track_id!r} has {input_name} of shape "
                                 f"{mel.shape}; {model_path} expects [T, {n_inputs}]")
            yield track_id, compute_activations(model, mel, chunk_frames, overlap_frames, torch_device)

    write_activation_store(out_path, attrs, mel_path, activations())
    log.info("wrote activations of %d tracks to %s (model %s, sha256 %s)", len(ids), out_path,
             meta["kind"], sha[:12])
    return len(ids)


def extract_oof_shard(
    main_model: str | os.PathLike,
    fold_models: Iterable[str | os.PathLike],
    mel_path: str | os.PathLike,
    tracks_csv: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    folds: int,
    fold_seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> int:
    """Out-of-fold activations of one mel shard.

    Each training track gets the activations of the fold model that did not train on it;
    every other track (val, test) those of the main model, which did not train on it either.
    """
    from tqdm.auto import tqdm

    from .data.dataset import training_folds
    from .data.store import list_track_ids, read_attrs, read_track_array
    from .device import resolve_device
    from .models import load_model

    fold_models = [Path(p) for p in fold_models]
    if len(fold_models) != folds:
        raise ValueError(f"expected {folds} fold models, got {len(fold_models)}")
    fold_of = training_folds(tracks_csv, folds, fold_seed)
    torch_device = resolve_device(device)
    models = {None: load_model(main_model, map_location=torch_device)[0]}
    models.update({k: load_model(p, map_location=torch_device)[0] for k, p in enumerate(fold_models)})
    fps = read_attrs(mel_path)["fps"]
    track_ids = list_track_ids(mel_path)
    attrs = {"fps": fps, "model_kind": "crnn_oof", "model_sha256": file_sha256(main_model),
             "fold_model_sha256": [file_sha256(p) for p in fold_models]}

    def activations() -> Iterator[tuple[str, np.ndarray]]:
        for track_id in tqdm(track_ids, desc=f"oof activations {Path(mel_path).stem}", disable=not progress):
            mel = np.asarray(read_track_array(mel_path, track_id, "mel"), dtype=np.float32)
            model = models[fold_of.get(track_id)]  # the fold model that never saw it
            yield track_id, compute_activations(model, mel, device=str(torch_device)).astype(np.float32)

    return write_activation_store(out_path, attrs, mel_path, activations())


def extract_ltm_shard(model_path: str | Path, crnn_activation_path: str | Path, out_path: str | Path, progress: bool = True) -> None:
    """Write the LTM's activations for every track of one CRNN activation shard."""
    from tqdm import tqdm

    from .data.store import read_file_attrs, read_store
    from .decoding.streaming import ltm_probabilities
    from .models import load_model

    model, meta = load_model(model_path)
    attrs = read_file_attrs(crnn_activation_path)
    crnn = read_store([crnn_activation_path], "activations")
    tracks = tqdm(sorted(crnn.items()), desc="ltm activations", disable=not progress)
    write_activation_store(out_path, activation_attrs(attrs["fps"], meta, model_path), crnn_activation_path,
                           ((track_id, ltm_probabilities(model, acts).astype(np.float32)) for track_id, acts in tracks))
