"""Training the CRNN from the HDF5 stores: the main model and the fold models.

``train_crnn`` reads the mel and target stores once (no audio is decoded), fits the
per-band input normalisation on the training tracks, and hands random crops with
on-the-fly mel augmentation to the shared trainer (:func:`beatgrid.training.train`).

Fold models (``fold=k``) train on the training tracks outside fold ``k``
(:func:`beatgrid.data.dataset.training_folds`) and validate on the same val split; their
activations of fold ``k``'s tracks are what the LTM sees for those tracks with
``ltm.input_source: oof`` (:func:`beatgrid.activations.extract_oof_shard`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data.augment import MelAugment
from ..data.dataset import DEFAULT_MEMORY_BUDGET_GB, MelNormalizer, training_folds
from ..data.store import read_attrs
from ..models import build_model, warn_ignored_sizes
from .config import TrainConfig, TrainResult
from .loop import train
from .runtime import seed_everything
from .stores import TrainingStores

log = logging.getLogger(__name__)

#: Keys of the ``crnn:`` block that build the model (the rest are training settings).
MODEL_KEYS = ("conv_channels", "rnn_hidden", "rnn_layers", "dropout", "causal")
MEL_ATTRS = ("sr", "hop_length", "n_fft", "n_mels", "fmin", "fmax", "fps")


def crnn_model_config(cfg: Mapping[str, Any], n_mels: int) -> dict[str, Any]:
    """The CRNN constructor arguments from a ``crnn:`` config block."""
    config = {key: cfg[key] for key in MODEL_KEYS if key in cfg}
    if "conv_channels" in config:
        config["conv_channels"] = tuple(config["conv_channels"])
    return {"n_mels": int(n_mels), **config}


def fold_train_ids(train_ids: list[str], tracks_csv: str | os.PathLike, fold: int | None, folds: int | None,
                   fold_seed: int = 0) -> list[str]:
    """The training tracks of the main model (``fold=None``: ``train_ids``) or of fold model
    ``fold``: those of ``train_ids`` outside fold ``fold`` of ``tracks_csv``'s
    :func:`~beatgrid.data.dataset.training_folds`."""
    if fold is None:
        return train_ids
    if folds is None or not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{'folds - 1' if folds is None else folds - 1}, got {fold}")
    fold_of = training_folds(tracks_csv, folds, fold_seed)
    return [t for t in train_ids if fold_of[t] != fold]


def train_crnn(
    stores: TrainingStores,
    cfg: Mapping[str, Any],
    out_dir: str | os.PathLike,
    *,
    fold: int | None = None,
    folds: int | None = None,
    fold_seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Train the CRNN of config.yaml's ``crnn:`` block; writes model.pt & co. to ``out_dir``.

    Args:
        stores: mel stores (``/tracks/<id>/mel`` float16 ``[T, n_mels]``) as inputs, the target
            stores, and the index whose ``split`` column picks train and val tracks.
        cfg: the ``crnn:`` block (model sizes, training keys, ``augment``).
        out_dir: receives model.pt (with the mel settings, fps and input normalisation),
            checkpoint.pt (resumed automatically), history.csv and curves.png.
        fold, folds, fold_seed: train fold model ``fold`` of ``folds`` (out-of-fold activations).
    """
    cfg = dict(cfg)
    splits = stores.split_ids()
    train_ids, val_ids = fold_train_ids(splits["train"], stores.tracks_csv, fold, folds, fold_seed), splits["val"]
    if not train_ids:
        raise ValueError(f"{stores.tracks_csv}: no track has split 'train'; nothing to train the CRNN on")
    mel_attrs = read_attrs(stores.inputs[0])
    features = {key: mel_attrs[key].item() if hasattr(mel_attrs[key], "item") else mel_attrs[key] for key in MEL_ATTRS}
    fps = float(features["fps"])
    train_cfg = TrainConfig.from_dict(cfg)
    target_attrs = read_attrs(stores.targets[0])
    augment = mel_augment(cfg.get("augment", True), target_attrs)
    budget = float(cfg.get("memory_budget_gb", DEFAULT_MEMORY_BUDGET_GB))
    train_set, val_set = stores.datasets("mel", train_ids, val_ids, train_cfg, budget, augment)

    seed_everything(train_cfg.seed)
    if cfg.get("init_from"):
        model = _pretrained(cfg["init_from"], features, crnn_model_config(cfg, int(features["n_mels"])))
        normalizer = MelNormalizer.from_dict(model.input_norm())
    else:
        normalizer = MelNormalizer.fit(train_set.inputs[t] for t in train_set.track_ids)
        model = build_model("crnn", crnn_model_config(cfg, int(features["n_mels"])))
        model.set_input_norm(normalizer.mean, normalizer.std)
    log.info(
        "CRNN%s on %d train / %d val tracks (%d train frames) at %g fps, augment=%s",
        "" if fold is None else f" fold {fold}/{folds}",
        len(train_ids), len(val_ids), sum(map(train_set.n_frames, train_set.track_ids)), fps, augment is not None,
    )
    meta = {
        "features": features,
        "fps": fps,
        "input_norm": normalizer.as_dict(),
        "fold": fold,
        "folds": folds,
        "augment": None if augment is None else {k: v for k, v in vars(augment).items()},
    }
    return train(model, train_set, val_set, train_cfg, Path(out_dir), val_fps=fps, progress=progress, model_meta=meta)


def mel_augment(setting: bool | Mapping[str, Any] | None, target_attrs: Mapping[str, Any]) -> MelAugment | None:
    """The training crops' augmentation for the ``augment`` key of a ``crnn:`` block: ``true`` (the
    default transforms), ``false``/None (none), or a mapping of :class:`MelAugment` settings laid
    over the defaults. The label widening always follows the target store's (``target_attrs``)."""
    if not setting:
        return None
    settings = dict(setting) if isinstance(setting, Mapping) else {}
    for key in ("widen_frames", "widen_value"):
        if key in settings:
            raise ValueError(f"crnn.augment.{key}: set by the targets: block, not here")
    return MelAugment.from_dict({**settings, "widen_frames": int(target_attrs.get("widen_frames", 1)),
                                 "widen_value": float(target_attrs.get("widen_value", 0.5))})


def _pretrained(spec: str | os.PathLike, features: Mapping[str, Any], requested: Mapping[str, Any]):
    """The CRNN to fine-tune: ``spec`` is ``pretrained:<name>``, a models folder or a model.pt.

    Its mel settings must match the stores'. Its sizes win over ``requested`` (the config's
    model settings): a difference is logged as a warning.
    """
    from ..models import load_model
    from ..pretrained import resolve_model_file

    path = resolve_model_file(spec, "crnn")
    model, meta = load_model(path)
    if meta.get("kind") != "crnn":
        raise ValueError(f"crnn.init_from: {path} holds a {meta.get('kind')!r} model, not a crnn")
    theirs = meta.get("features") or {}
    different = {k: (theirs.get(k), features[k]) for k in MEL_ATTRS if k in theirs and float(theirs[k]) != float(features[k])}
    if different:
        raise ValueError(f"crnn.init_from: {path} was trained on other mel settings (theirs, ours): {different}")
    warn_ignored_sizes("crnn", path, meta.get("model_config") or {}, requested)
    log.info("fine-tuning from %s (its sizes and input normalisation are kept)", path)
    return model
