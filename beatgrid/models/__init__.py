"""Neural models: the CRNN over log-mels and the causal learned temporal model.

Models are built by name from :data:`MODEL_REGISTRY`, which maps a kind to the
``"module:Class"`` that implements it; modules are imported only when a kind is built,
so registering a model costs one line and importing this package stays cheap.

``model.pt`` (written by :func:`save_model`, read by :func:`load_model`) is a
``torch.save`` of a dict of plain Python values and tensors::

    kind              registry key ("crnn", "tcn", "gru")
    model_config      constructor kwargs of the model class
    state_dict        weights and buffers (the CRNN's input normalisation included)
    features          mel config and fps of the inputs the model was trained on
    input_norm        {"mean": [...], "std": [...]} per input band, or None
    train_config      the training config (dict)
    best_epoch        epoch of the saved weights (1-based), or None
    val_metrics       validation metrics at that epoch
    pos_weight        the loss's positive weight per output [beat, downbeat], or None (no
                      weighting); the DBN and the grid undo it
                      (:func:`beatgrid.decoding.peaks.calibrate`); absent in files written
                      before beatgrid kept it
    beatgrid_version  version of the package that wrote the file
    checksum          of the weights (:func:`beatgrid.integrity.model_checksum`), verified on load
"""

from __future__ import annotations

import importlib
import inspect
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from beatgrid.errors import ModelFileError
from beatgrid.io import atomic_write
from beatgrid.integrity import CHECKSUM_ATTR, corrupt_message, model_checksum
from beatgrid.provenance import plain

log = logging.getLogger(__name__)

__all__ = ["MODEL_REGISTRY", "register_model", "model_class", "build_model", "save_model", "warn_ignored_sizes",
           "load_model", "ModelFileError"]

#: kind -> "module:Class". Add a model with one line (or :func:`register_model`).
MODEL_REGISTRY: dict[str, str | type[nn.Module]] = {
    "crnn": "beatgrid.models.crnn:CRNN",
    "tcn": "beatgrid.models.ltm:TemporalConvNet",
    "gru": "beatgrid.models.ltm:GRUTemporalModel",
}

#: Keys every model.pt that training writes holds (the checksum aside).
MODEL_FILE_KEYS = ("kind", "model_config", "state_dict", "features", "input_norm",
                   "train_config", "best_epoch", "val_metrics", "pos_weight", "beatgrid_version")


def register_model(kind: str, target: str | type[nn.Module]) -> None:
    """Register a model class (or its ``"module:Class"`` path) under ``kind``."""
    MODEL_REGISTRY[kind] = target


def model_class(kind: str) -> type[nn.Module]:
    """The class registered under ``kind`` (imported on first use)."""
    try:
        target = MODEL_REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(MODEL_REGISTRY)}") from None
    if isinstance(target, str):
        module_name, _, class_name = target.partition(":")
        target = getattr(importlib.import_module(module_name), class_name)
        MODEL_REGISTRY[kind] = target
    return target


def _constructor_kwargs(cls: type[nn.Module], model_config: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``model_config`` that ``cls.__init__`` accepts, lists made tuples."""
    params = inspect.signature(cls.__init__).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = {name for name, p in params.items() if name != "self"
             and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    kwargs = {}
    for key, value in model_config.items():
        if key in names or accepts_any:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    return kwargs


def build_model(kind: str, model_config: Mapping[str, Any] | None = None) -> nn.Module:
    """Build the model registered as ``kind`` from ``model_config``.

    ``model_config`` may be a whole config block (e.g. ``crnn:``): keys that the
    model's constructor does not take (epochs, lr, ...) are ignored. The model gets
    ``model_kind`` and ``model_config`` attributes (the kwargs used), which
    :func:`save_model` writes to model.pt.
    """
    cls = model_class(kind)
    kwargs = _constructor_kwargs(cls, dict(model_config or {}))
    model = cls(**kwargs)
    model.model_kind = kind
    model.model_config = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    return model


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically and byte-reproducibly.

    The archive is built in memory (torch names the records inside the zip after the
    file it writes to, so saving through a randomly named temporary file would give
    the same content new bytes, and Snakemake's checksum comparison would re-run
    everything downstream), then written to a temporary file beside ``path`` and
    renamed into place.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def save_model(path: str | Path, model: nn.Module, meta: Mapping[str, Any] | None = None) -> None:
    """Write ``model`` and its metadata to ``path`` (model.pt), atomically.

    ``kind`` and ``model_config`` come from ``meta`` or else from the attributes that
    :func:`build_model` sets. ``input_norm`` defaults to the model's own
    (``model.input_norm()``) where it has one. Other keys of ``meta`` are stored too.
    """
    from beatgrid import __version__

    meta = dict(meta or {})
    kind = meta.pop("kind", getattr(model, "model_kind", None))
    model_config = meta.pop("model_config", getattr(model, "model_config", None))
    if kind is None or model_config is None:
        raise ValueError("save_model needs the model kind and config: build the model with "
                         "build_model() or pass meta={'kind': ..., 'model_config': ...}")
    model_class(kind)  # fail now, not when loading, on an unknown kind
    input_norm = meta.pop("input_norm", None)
    if input_norm is None and hasattr(model, "input_norm"):
        input_norm = model.input_norm()
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "kind": kind,
        "model_config": plain(model_config),
        "state_dict": state_dict,
        "features": plain(meta.pop("features", None)),
        "input_norm": plain(input_norm),
        "train_config": plain(meta.pop("train_config", None)),
        "best_epoch": plain(meta.pop("best_epoch", None)),
        "val_metrics": plain(meta.pop("val_metrics", None)),
        "beatgrid_version": __version__,
    }
    payload.update(plain(meta))
    payload[CHECKSUM_ATTR] = model_checksum(state_dict)  # `beatgrid check` and load_model verify it
    atomic_torch_save(payload, path)


def load_model(path: str | Path, map_location: str | torch.device = "cpu"
               ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved at ``path``; returns ``(model in eval mode, meta)``.

    ``meta`` is the file's dict without ``state_dict``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, corrupt or not a model file
        raise ModelFileError(corrupt_message(path, f"corrupt or truncated model file ({exc})")) from None
    if not isinstance(payload, dict):
        raise ModelFileError(f"{path}: not a beatgrid model file (expected a dict)")
    missing = [key for key in ("kind", "model_config", "state_dict") if key not in payload]
    if missing:
        raise ModelFileError(f"{path}: not a beatgrid model file (missing {missing})")
    stored = payload.get(CHECKSUM_ATTR)
    if stored is not None and stored != model_checksum(payload["state_dict"]):
        raise ModelFileError(corrupt_message(path, "corrupt model file (its weights do not match their checksum)"))
    try:
        model = build_model(payload["kind"], payload["model_config"])
        model.load_state_dict(payload["state_dict"])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: cannot rebuild the {payload['kind']!r} model: {exc}") from exc
    model.to(map_location).eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta


def warn_ignored_sizes(kind: str, path: str | Path, kept: Mapping[str, Any], requested: Mapping[str, Any]) -> dict:
    """Log a warning for every model setting of ``requested`` that fine-tuning ``path`` ignores.

    A fine-tuned model keeps the architecture stored in its file (``kept``); a config that
    asks for other sizes (or a causal CRNN, another LTM kind) gets a trained model unlike
    the one it describes. Returns ``{key: (kept, requested)}`` of the differences.
    """
    def plain_value(value: Any) -> Any:
        return list(value) if isinstance(value, (list, tuple)) else value

    ignored = {key: (plain_value(kept[key]), plain_value(value)) for key, value in requested.items()
               if key in kept and plain_value(kept[key]) != plain_value(value)}
    if ignored:
        listed = ", ".join(f"{key} {theirs} (config: {ours})" for key, (theirs, ours) in ignored.items())
        log.warning("%s.init_from: %s keeps its own %s; set %s.init_from: null to train the "
                    "configured model from scratch", kind, path, listed, kind)
    return ignored
