"""Adapting a trained CRNN + LTM pair to a user's own annotated tracks, with an honest estimate.

The user's tracks (the ``adapt`` tracks) are indexed and turned into mel and target stores
like any dataset. Adaptation then reuses the training stages:

1. the CRNN is fine-tuned from ``init_from`` (:func:`beatgrid.crnn_training.train_crnn`)
   on the adapt tracks, plus a ``replay`` share of synthetic tracks so it does not forget
   what it knew, optionally with layers frozen (``crnn.freeze``);
2. the LTM is fine-tuned from the same starting pair (:func:`beatgrid.ltm_training.train_ltm`)
   on the adapted CRNN's activations of those tracks, degraded at random
   (``input_source: augment``) so they look like activations of unseen tracks.

The estimate of how well the adapted model does on tracks it has not seen is a K-fold
cross-validation over the adapt tracks (:func:`fold_of_tracks`, by a hash of
``track_id``): the model of fold ``k`` adapts on every other fold and predicts fold ``k``.
Its per-track scores sit beside those of the unadapted model and of librosa on the same
tracks (``summary.csv``, columns of the evaluation's summary). A learning curve repeats
the folds with only ``n`` of the training tracks. The final model adapts on all tracks.

Folders written by :func:`adapt_models` (``DIR``): ``crnn/``, ``ltm/`` (model.pt,
checkpoint.pt, history.csv, curves.png), ``tracks.csv`` (the tracks it trained on),
``activations/`` (the adapted CRNN's activations of them) and ``adapt.json`` (the settings,
written last: a run that finds it with the same settings has nothing to do). A killed run
resumes from the trainers' checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .ltm_training import assign_folds

__all__ = [
    "AdaptConfig", "TrackStores", "adapt_tracks", "fold_of_tracks", "fold_train_ids", "replay_ids",
    "adapt_models", "evaluate_models", "evaluate_reference", "run_fold", "summarize_cv",
    "learning_curve_table", "cross_validate", "CV_LABEL", "PRETRAINED_LABEL",
]

log = logging.getLogger(__name__)

#: Method-name suffixes of the three sides of the comparison.
PRETRAINED_LABEL = "pretrained"
CV_LABEL = "adapted, {folds}-fold CV"
#: Split name the cross-validated tracks get in per_track.csv and summary.csv.
CV_SPLIT = "cv"


@dataclass
class AdaptConfig:
    """The ``adapt:`` config block (datasets aside).

    ``crnn`` / ``ltm``: training keys laid over the starting model's (``epochs``, ``lr``,
    ``freeze`` prefixes, ...; sizes always come from ``init_from``). ``replay``: share of the
    training tracks drawn from synthetic tracks (0 <= replay < 1). ``learning_curve``: numbers
    of annotated tracks to adapt on for the curve, on the first ``learning_curve_folds`` folds.
    ``methods``/``inference``: inference methods scored and their settings
    (:func:`beatgrid.inference.run_method` keywords).
    """

    init_from: str = "pretrained:synth-v1"
    crnn: dict[str, Any] = field(default_factory=lambda: {
        "epochs": 20, "lr": 5e-4, "warmup_epochs": 0, "batch_size": 8, "crop_frames": 400,
        "patience": 0, "augment": True, "freeze": [], "seed": 0, "device": "auto"})
    ltm: dict[str, Any] = field(default_factory=lambda: {
        "epochs": 20, "lr": 1e-3, "warmup_epochs": 0, "batch_size": 4, "crop_frames": 500,
        "patience": 0, "freeze": [], "seed": 0, "device": "auto"})
    replay: float = 0.0
    folds: int = 5
    fold_seed: int = 0
    learning_curve: list[int] = field(default_factory=lambda: [5, 10, 20])
    learning_curve_folds: int = 2
    methods: list[str] = field(default_factory=lambda: ["crnn_peaks", "crnn_dbn", "crnn_grid", "ltm_online"])
    inference: dict[str, Any] = field(default_factory=dict)
    reference_trackers: list[str] = field(default_factory=lambda: ["librosa"])
    trim_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.replay) < 1.0:
            raise ValueError(f"adapt.replay must be in [0, 1), got {self.replay}")
        if int(self.folds) != self.folds or self.folds < 2:
            raise ValueError(f"adapt.folds must be an integer >= 2, got {self.folds!r}")
        defaults = type(self).__dataclass_fields__
        self.crnn = {**defaults["crnn"].default_factory(), **dict(self.crnn or {})}
        self.ltm = {**defaults["ltm"].default_factory(), **dict(self.ltm or {})}

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> "AdaptConfig":
        """From a config block; keys that are not fields (``datasets``) are ignored."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in dict(block).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


@dataclass
class TrackStores:
    """The index rows of the tracks and their mel and target stores, by shard."""

    tracks: pd.DataFrame
    mels: dict[str, Path]
    targets: dict[str, Path]

    @classmethod
    def from_paths(cls, tracks_csv: str | os.PathLike, mel_paths: Iterable[str | os.PathLike],
                   target_paths: Iterable[str | os.PathLike]) -> "TrackStores":
        """Stores named ``<shard>.h5`` (as the workflow and ``beatgrid adapt`` write them)."""
        from .data.index import read_index

        return cls(read_index(tracks_csv), {Path(p).stem: Path(p) for p in mel_paths},
                   {Path(p).stem: Path(p) for p in target_paths})

    def rows(self, track_ids: Iterable[str]) -> pd.DataFrame:
        ids = list(track_ids)
        rows = self.tracks.set_index("track_id", drop=False)
        missing = sorted(set(ids) - set(rows.index))
        if missing:
            raise KeyError(f"tracks not in the index: {missing[:5]}")
        return rows.loc[ids].reset_index(drop=True)

    def by_shard(self, track_ids: Iterable[str]) -> dict[str, list[str]]:
        """shard -> the given tracks in it (shards sorted, tracks in the given order)."""
        shard_of = dict(zip(self.tracks["track_id"], self.tracks["shard"]))
        groups: dict[str, list[str]] = {}
        for track_id in track_ids:
            groups.setdefault(shard_of[track_id], []).append(track_id)
        return dict(sorted(groups.items()))

    def target_paths(self, track_ids: Iterable[str]) -> list[Path]:
        return [self.targets[shard] for shard in self.by_shard(track_ids)]


# ----------------------------------------------------------------------------- track sets
def _ranked(track_ids: Iterable[str], seed: int) -> list[str]:
    """Track ids in the order of ``sha1(f"{seed}:{track_id}")``: stable, independent of input order."""
    return sorted(dict.fromkeys(track_ids), key=lambda t: hashlib.sha1(f"{seed}:{t}".encode()).hexdigest())


def adapt_tracks(tracks: pd.DataFrame, datasets: Sequence[str] | None = None) -> list[str]:
    """The track ids of ``datasets`` (all splits: every annotated track adapts), sorted.

    ``datasets=None`` takes every track. An unknown dataset name raises ValueError.
    """
    if datasets is None:
        return sorted(tracks["track_id"])
    unknown = sorted(set(datasets) - set(tracks["dataset"]))
    if unknown:
        raise ValueError(f"adapt.datasets names {unknown}, which have no indexed track "
                         f"(indexed: {sorted(set(tracks['dataset']))})")
    return sorted(tracks.loc[tracks["dataset"].isin(list(datasets)), "track_id"])


def fold_of_tracks(track_ids: Iterable[str], folds: int, seed: int = 0) -> dict[str, int]:
    """Cross-validation fold of every adapt track (by a hash of ``track_id``: see :func:`assign_folds`)."""
    return assign_folds(track_ids, folds, seed)


def fold_train_ids(track_ids: Sequence[str], fold: int | None, folds: int, seed: int = 0,
                   n_tracks: int | None = None) -> list[str]:
    """The tracks fold model ``fold`` adapts on (all tracks for ``fold=None``, the final model).

    Never a track of fold ``fold`` itself. ``n_tracks``: only the first ``n_tracks`` of them
    by hash rank (nested: the 5 are among the 10), for the learning curve.
    """
    if fold is None:
        kept = list(track_ids)
    else:
        fold_of = fold_of_tracks(track_ids, folds, seed)
        if not 0 <= fold < folds:
            raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}")
        kept = [t for t in track_ids if fold_of[t] != fold]
    if n_tracks is not None:
        kept = _ranked(kept, seed)[: int(n_tracks)]
    return sorted(kept)


def replay_ids(pool: Sequence[str], n_adapt: int, share: float, seed: int = 0) -> list[str]:
    """Synthetic tracks replayed beside ``n_adapt`` adapt tracks so they make ``share`` of the set."""
    if share <= 0 or not pool:
        return []
    wanted = int(round(share / (1.0 - share) * n_adapt))
    if wanted > len(pool):
        log.warning("replay %.2f asks for %d synthetic tracks, only %d indexed: using them all",
                    share, wanted, len(pool))
    return sorted(_ranked(pool, seed)[:wanted])


# ----------------------------------------------------------------------------- adaptation
def _settings_fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def adapt_models(
    stores: TrackStores,
    train_ids: Sequence[str],
    cfg: AdaptConfig,
    out_dir: str | os.PathLike,
    *,
    replay: Sequence[str] = (),
    progress: bool = True,
) -> Path:
    """Fine-tune the CRNN, then the LTM, of ``cfg.init_from`` on ``train_ids`` (+ ``replay``).

    Writes ``out_dir/{crnn,ltm}/model.pt`` (usable as ``--models out_dir``) and returns
    ``out_dir``. The LTM fine-tunes on the adapted CRNN's activations of the same tracks,
    augmented (``input_source: augment``). Nothing is redone when ``out_dir/adapt.json``
    records the same settings and tracks.
    """
    from .activations import extract_shard_activations, file_sha256
    from .crnn_training import train_crnn
    from .ltm_training import train_ltm
    from .pretrained import resolve_model_file

    out_dir = Path(out_dir)
    ids = sorted(dict.fromkeys([*train_ids, *replay]))
    if not train_ids:
        raise ValueError("no track to adapt on")
    init_crnn = resolve_model_file(cfg.init_from, "crnn")
    init_ltm = resolve_model_file(cfg.init_from, "ltm")
    settings = {"config": {k: v for k, v in cfg.to_dict().items() if k in ("init_from", "crnn", "ltm")},
                "init_sha256": [file_sha256(init_crnn), file_sha256(init_ltm)],
                "train_ids": sorted(train_ids), "replay_ids": sorted(replay)}
    record = out_dir / "adapt.json"
    if record.is_file() and json.loads(record.read_text()).get("fingerprint") == _settings_fingerprint(settings):
        log.info("%s: adapted already with these settings", out_dir)
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    tracks_csv = out_dir / "tracks.csv"
    stores.rows(ids).assign(split="train").to_csv(tracks_csv, index=False)
    by_shard = stores.by_shard(ids)
    mel_paths = [stores.mels[s] for s in by_shard]
    target_paths = [stores.targets[s] for s in by_shard]
    log.info("adapting %s on %d tracks (+%d replayed) into %s", cfg.init_from, len(train_ids), len(replay), out_dir)

    train_crnn(mel_paths, target_paths, tracks_csv, {**cfg.crnn, "init_from": str(init_crnn)}, out_dir / "crnn",
               progress=progress)
    activation_paths = []
    for shard, shard_ids in by_shard.items():
        path = out_dir / "activations" / f"{shard}.h5"
        extract_shard_activations(out_dir / "crnn" / "model.pt", stores.mels[shard], path, track_ids=shard_ids,
                                  device=cfg.crnn.get("device", "auto"), progress=progress)
        activation_paths.append(path)
    ltm_cfg = {**cfg.ltm, "input_source": "augment", "augment": True, "init_from": str(init_ltm)}
    train_ltm(activation_paths, target_paths, tracks_csv, ltm_cfg, out_dir / "ltm", progress=progress)
    record.write_text(json.dumps({"fingerprint": _settings_fingerprint(settings), **settings}, indent=1) + "\n")
    return out_dir


# ----------------------------------------------------------------------------- evaluation
def _method_name(method: str, label: str) -> str:
    return f"{method} ({label})"


def _score(stores: TrackStores, rows: pd.DataFrame, prediction_dirs: Mapping[str, Path],
           trim_seconds: float) -> pd.DataFrame:
    from .evaluation import evaluate_predictions, references_from_targets

    references = references_from_targets(stores.target_paths(rows["track_id"]), rows)
    rows = rows.assign(split=CV_SPLIT)
    return evaluate_predictions(rows, references, prediction_dirs, trim_seconds)


def evaluate_models(
    models_dir: str | os.PathLike,
    stores: TrackStores,
    track_ids: Sequence[str],
    cfg: AdaptConfig,
    out_dir: str | os.PathLike,
    label: str,
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """Predict ``track_ids`` with the CRNN + LTM of ``models_dir`` by every ``cfg.methods``, score them.

    Writes ``out_dir/predictions/<method>/`` and ``out_dir/per_track.csv`` (methods named
    ``"<method> (<label>)"``, split ``cv``) and returns the per-track table.
    """
    from .activations import extract_shard_activations
    from .inference import extract_ltm_shard, predict_store
    from .workflow import METHOD_SOURCE

    models_dir, out_dir = Path(models_dir), Path(out_dir)
    rows = stores.rows(sorted(track_ids))
    tracks_csv = out_dir / "tracks.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows.to_csv(tracks_csv, index=False)
    sources = {METHOD_SOURCE[m] for m in cfg.methods}
    activations: dict[str, list[Path]] = {"crnn": [], "ltm": []}
    for shard, shard_ids in stores.by_shard(rows["track_id"]).items():
        crnn_path = out_dir / "activations" / "crnn" / f"{shard}.h5"
        extract_shard_activations(models_dir / "crnn" / "model.pt", stores.mels[shard], crnn_path,
                                  track_ids=shard_ids, device=cfg.crnn.get("device", "auto"), progress=progress)
        activations["crnn"].append(crnn_path)
        if "ltm" in sources:
            ltm_path = out_dir / "activations" / "ltm" / f"{shard}.h5"
            ltm_path.parent.mkdir(parents=True, exist_ok=True)
            extract_ltm_shard(models_dir / "ltm" / "model.pt", crnn_path, ltm_path, progress=progress)
            activations["ltm"].append(ltm_path)
    prediction_dirs = {}
    for method in cfg.methods:
        folder = out_dir / "predictions" / method
        predict_store(method, dict(cfg.inference), activations[METHOD_SOURCE[method]], tracks_csv, folder,
                      progress=progress)
        prediction_dirs[_method_name(method, label)] = folder
    per_track = _score(stores, rows, prediction_dirs, cfg.trim_seconds)
    per_track.to_csv(out_dir / "per_track.csv", index=False, float_format="%.6g")
    return per_track


def evaluate_reference(stores: TrackStores, track_ids: Sequence[str], cfg: AdaptConfig,
                       out_dir: str | os.PathLike) -> pd.DataFrame:
    """The reference trackers (librosa) on the same tracks: ``out_dir/per_track.csv``."""
    from .data.store import read_attrs
    from .reference import write_reference_predictions

    out_dir = Path(out_dir)
    rows = stores.rows(sorted(track_ids))
    sr = int(read_attrs(next(iter(stores.mels.values())))["sr"])  # the analysis rate of the mels
    prediction_dirs = {}
    for tracker in cfg.reference_trackers:
        folder = out_dir / "predictions" / tracker
        write_reference_predictions(rows, folder, tracker, sr=sr)
        prediction_dirs[tracker] = folder
    per_track = _score(stores, rows, prediction_dirs, cfg.trim_seconds)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_track.to_csv(out_dir / "per_track.csv", index=False, float_format="%.6g")
    return per_track


def run_fold(
    stores: TrackStores,
    track_ids: Sequence[str],
    fold: int,
    cfg: AdaptConfig,
    out_dir: str | os.PathLike,
    *,
    n_tracks: int | None = None,
    replay_pool: Sequence[str] = (),
    progress: bool = True,
) -> pd.DataFrame:
    """Adapt fold model ``fold`` (on ``n_tracks`` of its training tracks, default all) and
    score it on the fold's own tracks, which it never trained on. Returns per_track.csv's table."""
    out_dir = Path(out_dir)
    train = fold_train_ids(track_ids, fold, cfg.folds, cfg.fold_seed, n_tracks)
    held_out = [t for t, k in fold_of_tracks(track_ids, cfg.folds, cfg.fold_seed).items() if k == fold]
    leaked = set(train) & set(held_out)
    if leaked:  # cannot happen by construction; a guard for the estimate's honesty
        raise AssertionError(f"fold {fold} would train on its own tracks {sorted(leaked)[:5]}")
    replay = replay_ids(replay_pool, len(train), cfg.replay, cfg.fold_seed)
    adapt_models(stores, train, cfg, out_dir, replay=replay, progress=progress)
    per_track = evaluate_models(out_dir, stores, held_out, cfg, out_dir / "heldout",
                                CV_LABEL.format(folds=cfg.folds), progress=progress)
    per_track = per_track.assign(fold=fold, n_train_tracks=len(train))
    per_track.to_csv(out_dir / "heldout" / "per_track.csv", index=False, float_format="%.6g")
    return per_track


# ----------------------------------------------------------------------------- tables
_SPREAD_COLUMNS = ("beat_f", "downbeat_f", "tempo_acc1")


def summarize_cv(per_track: pd.DataFrame) -> pd.DataFrame:
    """One row per method x dataset (and ``all``): the evaluation's summary columns, plus the
    per-track spread (``<metric>_std``, ``<metric>_q25``, ``<metric>_q75``) of beat F,
    downbeat F and Acc1."""
    from .evaluation import summarize

    methods = list(dict.fromkeys(per_track["method"]))
    summary = summarize(per_track, variants={m: m for m in methods})
    spread = []
    for record in summary.to_dict("records"):
        rows = per_track[per_track["method"] == record["method"]]
        if record["dataset"] != "all":
            rows = rows[rows["dataset"] == record["dataset"]]
        extra = {}
        for metric in _SPREAD_COLUMNS:
            values = rows[metric].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            extra[f"{metric}_std"] = float(np.std(values)) if len(values) else math.nan
            extra[f"{metric}_q25"] = float(np.quantile(values, 0.25)) if len(values) else math.nan
            extra[f"{metric}_q75"] = float(np.quantile(values, 0.75)) if len(values) else math.nan
        spread.append(extra)
    return pd.concat([summary, pd.DataFrame(spread, index=summary.index)], axis=1)


def learning_curve_table(points: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Mean beat F, downbeat F and Acc1 per method against the number of adapt tracks.

    ``points``: number of annotated tracks -> per-track table of the models adapted on that
    many (0: the unadapted model), all scored on the same held-out tracks. Method names lose
    their ``(label)`` suffix so the curve joins them.
    """
    records = []
    for n_tracks, per_track in sorted(points.items()):
        base = per_track["method"].str.replace(r" \(.*\)$", "", regex=True)
        for method, rows in per_track.groupby(base, sort=False):
            records.append({"n_tracks": int(n_tracks), "method": method, "n_eval_tracks": len(rows),
                            **{m: float(rows[m].mean()) for m in _SPREAD_COLUMNS}})
    return pd.DataFrame.from_records(records, columns=["n_tracks", "method", "n_eval_tracks", *_SPREAD_COLUMNS])


# ----------------------------------------------------------------------------- everything
def cross_validate(
    stores: TrackStores,
    track_ids: Sequence[str],
    cfg: AdaptConfig,
    out_dir: str | os.PathLike,
    *,
    replay_pool: Sequence[str] = (),
    learning_curve: bool = True,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """The whole estimate in one process: pretrained + reference + K fold models (+ curve).

    Writes under ``out_dir``: ``pretrained/``, ``reference/``, ``fold<k>/``, ``curve/n<n>/fold<k>/``,
    ``per_track.csv``, ``summary.csv``, ``learning_curve.csv``. Each piece is skipped when
    done (a killed run resumes). Returns ``per_track``, ``summary`` and ``learning_curve``.
    """
    from .pretrained import models_dir as shipped_dir

    out_dir = Path(out_dir)
    track_ids = sorted(track_ids)
    init_dir = _models_folder(cfg.init_from, shipped_dir)
    pretrained = evaluate_models(init_dir, stores, track_ids, cfg, out_dir / "pretrained", PRETRAINED_LABEL,
                                 progress=progress)
    reference = evaluate_reference(stores, track_ids, cfg, out_dir / "reference")
    folds = [run_fold(stores, track_ids, k, cfg, out_dir / f"fold{k}", replay_pool=replay_pool, progress=progress)
             for k in range(cfg.folds)]
    per_track = pd.concat([pretrained, *folds, reference], ignore_index=True)
    per_track.to_csv(out_dir / "per_track.csv", index=False, float_format="%.6g")
    summary = summarize_cv(per_track)
    summary.to_csv(out_dir / "summary.csv", index=False, float_format="%.6g")
    curve = pd.DataFrame()
    if learning_curve:
        curve = learning_curve_table(_curve_points(stores, track_ids, cfg, out_dir, pretrained, folds,
                                                   replay_pool, progress))
        curve.to_csv(out_dir / "learning_curve.csv", index=False, float_format="%.6g")
    return {"per_track": per_track, "summary": summary, "learning_curve": curve}


def curve_sizes(cfg: AdaptConfig, n_train: int) -> list[int]:
    """The learning curve's numbers of tracks below a fold's training size ``n_train``."""
    return sorted({int(n) for n in cfg.learning_curve if 0 < int(n) < n_train})


def _curve_points(stores, track_ids, cfg, out_dir, pretrained, folds, replay_pool, progress):
    curve_folds = list(range(min(cfg.learning_curve_folds, cfg.folds)))
    held_out = set(pd.concat([folds[k] for k in curve_folds])["track_id"])
    points = {0: pretrained[pretrained["track_id"].isin(held_out)]}
    n_full = min(len(fold_train_ids(track_ids, k, cfg.folds, cfg.fold_seed)) for k in curve_folds)
    for n in curve_sizes(cfg, n_full):
        points[n] = pd.concat([run_fold(stores, track_ids, k, cfg, out_dir / "curve" / f"n{n}" / f"fold{k}",
                                        n_tracks=n, replay_pool=replay_pool, progress=progress)
                               for k in curve_folds], ignore_index=True)
    points[n_full] = pd.concat([folds[k] for k in curve_folds], ignore_index=True)
    return points


def _models_folder(spec: str, shipped_dir) -> Path:
    """The models folder (crnn/ + ltm/) that ``init_from`` names."""
    from .pretrained import PREFIX

    return shipped_dir(spec) if str(spec).startswith(PREFIX) else Path(spec)
