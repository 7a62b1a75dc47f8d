"""Training the Learned Temporal Model (LTM) on CRNN activations: datasets, folds, glue.

The LTM learns to turn CRNN activations into better beat/downbeat activations. Its
inputs must look like the CRNN's output on tracks the CRNN has *not* trained on, or it
learns to trust overconfident peaks. ``ltm.input_source`` selects how:

- ``augment``: the main CRNN's activations, degraded at random by
  :class:`beatgrid.data.activation_augment.ActivationAugment` every time a crop is served;
- ``oof``: out-of-fold activations. The training tracks are split into ``folds`` folds
  (:func:`beatgrid.data.folds.assign_folds`); fold model ``k`` is a CRNN trained without fold ``k`` and
  writes the activations of fold ``k``'s tracks. The workflow builds that store
  (``results/activations/crnn_oof``); here it is read like any activation store.

``cfg["augment"]`` (bool, default ``input_source == "augment"``) switches augmentation
on or off independently, e.g. for out-of-fold activations plus augmentation.
Validation tracks are never augmented: their activations come from a CRNN that did not
train on them, as test tracks' will.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any


from ..data.activation_augment import ActivationAugment
from ..data.dataset import DEFAULT_MEMORY_BUDGET_GB
from ..data.store import read_attrs
from ..models import build_model, warn_ignored_sizes
from ..models.ltm import ltm_model_config
from .config import TrainConfig, TrainResult
from .loop import train
from .runtime import seed_everything
from .stores import TrainingStores

__all__ = ["INPUT_SOURCES", "train_ltm"]

log = logging.getLogger(__name__)

INPUT_SOURCES = ("augment", "oof")


def _pretrained(spec: str | os.PathLike, fps: float, requested: tuple[str, Mapping[str, Any]]):
    """The LTM to fine-tune: ``spec`` is ``pretrained:<name>``, a models folder or a model.pt.

    It must be an LTM (``tcn``/``gru``) trained on activations at the stores' ``fps``. Its
    kind and sizes win over ``requested`` (the config's ``(kind, model_config)``): a
    difference is logged as a warning.
    """
    from ..models import load_model
    from ..models.ltm import LTM_KINDS
    from ..pretrained import resolve_model_file

    path = resolve_model_file(spec, "ltm")
    model, meta = load_model(path)
    if meta.get("kind") not in LTM_KINDS:
        raise ValueError(f"ltm.init_from: {path} holds a {meta.get('kind')!r} model, not an LTM {LTM_KINDS}")
    theirs = (meta.get("features") or {}).get("fps")
    if theirs is not None and float(theirs) != float(fps):
        raise ValueError(f"ltm.init_from: {path} was trained on activations at {theirs} fps, the stores have {fps}")
    kind, sizes = requested
    warn_ignored_sizes("ltm", path, {"kind": meta.get("kind"), **(meta.get("model_config") or {})},
                       {"kind": kind, **sizes})
    log.info("fine-tuning the LTM from %s (its kind and sizes are kept)", path)
    return model


def _store_fps(paths: Sequence[str]) -> float:
    fps = {float(attrs["fps"]) for attrs in map(read_attrs, paths) if "fps" in attrs}
    if not fps:
        raise ValueError(f"activation stores carry no 'fps' attribute: {list(paths)[:3]}")
    if len(fps) > 1:
        raise ValueError(f"activation stores disagree on fps: {sorted(fps)}")
    return fps.pop()


def train_ltm(
    stores: TrainingStores,
    cfg: Mapping[str, Any],
    out_dir: str | os.PathLike,
    progress: bool = True,
) -> TrainResult:
    """Train the LTM (config.yaml's ``ltm:`` block) and write model.pt & co. to ``out_dir``.

    Args:
        stores: activation stores (``/tracks/<id>/activations`` ``[T, 2]``) as inputs, holding
            every train and val track of the index (out-of-fold ones for ``oof``), the target
            stores, and the index whose ``split`` column picks train and val tracks.
        cfg: the ``ltm:`` block: model sizes (:func:`ltm_model_config`), training keys
            (:class:`beatgrid.training.TrainConfig`), ``input_source``, optional ``augment``,
            optional ``init_from`` (``pretrained:<name>``, a models folder or an LTM model.pt
            to fine-tune; its kind and sizes replace the block's).
        out_dir: receives model.pt (kind ``tcn``/``gru``, model_config, ``features.fps``,
            ``input_source``, ``augment``), checkpoint.pt, history.csv, curves.png.
        progress: tqdm progress bars.

    Raises:
        ValueError: an unknown ``input_source``, no training tracks, or stores without fps.
    """
    cfg = dict(cfg)
    input_source = cfg.get("input_source", "augment")
    if input_source not in INPUT_SOURCES:
        raise ValueError(f"ltm.input_source must be one of {INPUT_SOURCES}, got {input_source!r}")
    ids = stores.split_ids()
    if not ids["train"]:
        raise ValueError(f"{stores.tracks_csv}: no track has split 'train'; nothing to train the LTM on")
    fps = _store_fps(stores.inputs)
    use_augment = cfg.get("augment")
    if use_augment is None:  # `augment: null` in config.yaml: follow input_source
        use_augment = input_source == "augment"
    augment = ActivationAugment(fps=fps) if use_augment else None
    train_cfg = TrainConfig.from_dict(cfg)

    budget = float(cfg.get("memory_budget_gb", DEFAULT_MEMORY_BUDGET_GB))
    train_set, val_set = stores.datasets("activations", ids["train"], ids["val"], train_cfg, budget, augment)
    seed_everything(train_cfg.seed)
    if cfg.get("init_from"):
        model = _pretrained(cfg["init_from"], fps, ltm_model_config(cfg))
        kind = model.model_kind
    else:
        kind, model_config = ltm_model_config(cfg)
        model = build_model(kind, model_config)
    log.info(
        "LTM %s on %d train / %d val tracks at %g fps, input_source=%s, augment=%s, receptive field %s frames",
        kind, len(ids["train"]), len(ids["val"]), fps, input_source, augment is not None,
        getattr(model, "receptive_field", None),
    )
    meta = {
        "features": {"fps": fps},
        "input_source": input_source,
        "augment": asdict(augment) if augment is not None else None,
    }
    return train(model, train_set, val_set, train_cfg, Path(out_dir), val_fps=fps, progress=progress, model_meta=meta)
