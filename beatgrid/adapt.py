"""Adapting a trained CRNN + LTM pair to a user's own annotated tracks, with an honest estimate.

The user's tracks (the ``adapt`` tracks) are indexed and turned into mel and target stores
like any dataset. Adaptation then reuses the training stages:

1. the CRNN is fine-tuned from ``init_from`` (:func:`beatgrid.training.crnn.train_crnn`)
   on the adapt tracks, plus a ``replay`` share of synthetic tracks so it does not forget
   what it knew, optionally with layers frozen (``crnn.freeze``);
2. the LTM is fine-tuned from the same starting pair (:func:`beatgrid.training.ltm.train_ltm`)
   on the adapted CRNN's activations of those tracks, degraded at random
   (``input_source: augment``) so they look like activations of unseen tracks.

The estimate of how well the adapted model does on tracks it has not seen is a K-fold
cross-validation over the adapt tracks (:func:`fold_of_tracks`, by a hash of
``track_id``; the tracks of one index ``group``, such as two mixes of a piece, share a
fold): the model of fold ``k`` adapts on every other fold and predicts fold ``k``.
Its per-track scores sit beside those of the unadapted model and of librosa on the same
tracks (``summary.csv``, columns of the evaluation's summary). A learning curve repeats
the folds with only ``n`` of the training tracks. The final model adapts on all tracks.

Folders written by :meth:`Adaptation.adapt_models` (``DIR``): ``crnn/``, ``ltm/`` (model.pt,
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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data.folds import assign_folds, hash_ranked, without_fold
from .io import atomic_write, atomic_write_text
from .methods import SETTING_NAMES

__all__ = [
    "AdaptConfig", "TrackStores", "Adaptation", "adapt_tracks", "fold_of_tracks", "fold_train_ids", "replay_ids",
    "summarize_cv", "adaptation_gain", "adaptation_losses", "gain_lines", "GAIN_COLUMNS", "learning_curve_table",
    "curve_plan", "CurvePlan", "combine_cv", "keep_norm_statistics", "KEEP_NORM_STATISTICS_BELOW_TRACKS",
    "CV_LABEL", "PRETRAINED_LABEL", "REPLAY_DATASET", "prepare_stores", "n_replay_tracks", "unlabelled_method",
]

log = logging.getLogger(__name__)

#: Method-name suffixes of the three sides of the comparison.
PRETRAINED_LABEL = "pretrained"
CV_LABEL = "adapted, {folds}-fold CV"
#: Split name the cross-validated tracks get in per_track.csv and summary.csv.
CV_SPLIT = "cv"
#: Dataset name of the synthetic tracks ``beatgrid adapt`` renders to replay.
REPLAY_DATASET = "replay"
#: ``keep_norm_statistics: auto`` keeps the starting model's BatchNorm statistics below this
#: many annotated tracks: on 42 real clips five tracks with updated statistics lost 0.04–0.06 beat F
#: against the unadapted model, kept ones did not; from ten on the two were within the seed
#: spread (RESULTS.md 10c, 10h).
KEEP_NORM_STATISTICS_BELOW_TRACKS = 10


@dataclass
class AdaptConfig:
    """The ``adapt:`` config block (datasets aside).

    ``crnn`` / ``ltm``: training keys laid over the starting model's (``epochs``, ``lr``,
    ``freeze`` prefixes, ...; sizes always come from ``init_from``); their
    ``keep_norm_statistics`` may be ``"auto"`` (:func:`keep_norm_statistics`). ``replay``: share of the
    training tracks drawn from synthetic tracks (0 <= replay < 1). ``learning_curve``: numbers
    of annotated tracks to adapt on for the curve, on the first ``learning_curve_folds`` folds.
    ``methods``/``inference``: inference methods scored and their settings
    (:func:`beatgrid.inference.run_method` keywords).
    """

    init_from: str = "pretrained:synth-v2"
    crnn: dict[str, Any] = field(default_factory=lambda: {
        "epochs": 12, "lr": 5e-4, "warmup_epochs": 0, "batch_size": 8, "crop_frames": 400,
        "patience": 0, "augment": True, "freeze": [], "keep_norm_statistics": "auto", "seed": 0, "device": "auto"})
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

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "AdaptConfig":
        """From a workflow config: its ``adapt:`` block, ``evaluation``'s ``trim_seconds`` and
        ``reference_trackers``, and ``inference``'s settings (a list: its first value)."""
        inference = {}
        for key in SETTING_NAMES:
            value = (config.get("inference") or {}).get(key)
            if value is not None:
                inference[key] = float(value[0] if isinstance(value, (list, tuple)) else value)
        evaluation = config.get("evaluation") or {}
        block = {"inference": inference, **dict(config.get("adapt") or {})}
        for key in ("trim_seconds", "reference_trackers"):
            if key in evaluation:
                block[key] = evaluation[key]
        return cls.from_dict(block)

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
        from .data.tracks import read_index

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
def adapt_tracks(tracks: pd.DataFrame, datasets: Sequence[str] | None = None) -> list[str]:
    """The track ids of ``datasets`` (all splits: every annotated track adapts), sorted.

    A name matches a track's ``dataset`` or its ``source`` (the config's name of an
    ``index_csv`` whose rows name their own datasets). ``datasets=None`` takes every track.
    An unknown name raises ValueError.
    """
    if datasets is None:
        return sorted(tracks["track_id"])
    names = {column: set(tracks[column]) for column in ("dataset", "source") if column in tracks}
    unknown = sorted(set(datasets) - set().union(*names.values()))
    if unknown:
        raise ValueError(f"adapt.datasets names {unknown}, which have no indexed track "
                         f"(indexed: {sorted(names['dataset'])})")
    chosen = np.zeros(len(tracks), dtype=bool)
    for column in names:
        chosen |= tracks[column].isin(list(datasets)).to_numpy()
    return sorted(tracks.loc[chosen, "track_id"])


def fold_of_tracks(track_ids: Iterable[str], folds: int, seed: int = 0,
                   groups: Mapping[str, str] | None = None) -> dict[str, int]:
    """Cross-validation fold of every adapt track (by a hash of ``track_id``, or of its
    ``groups`` entry, as :func:`beatgrid.data.folds.assign_folds` deals the LTM's folds)."""
    return assign_folds(track_ids, folds, seed, groups)


def fold_train_ids(track_ids: Sequence[str], fold: int | None, folds: int, seed: int = 0,
                   n_tracks: int | None = None, groups: Mapping[str, str] | None = None) -> list[str]:
    """The tracks fold model ``fold`` adapts on (all tracks for ``fold=None``, the final model).

    Never a track of fold ``fold`` itself, nor one of a group (``groups``) in it.
    ``n_tracks``: only the first ``n_tracks`` of them by hash rank (nested: the 5 are among
    the 10), for the learning curve.
    """
    kept = list(track_ids) if fold is None else without_fold(track_ids, fold, folds, seed, groups)
    if n_tracks is not None:
        kept = hash_ranked(kept, seed)[: int(n_tracks)]
    return sorted(kept)


def n_replay_tracks(n_adapt: int, share: float) -> int:
    """How many synthetic tracks make ``share`` of a set with ``n_adapt`` adapt tracks."""
    return int(round(share / (1.0 - share) * n_adapt)) if share > 0 else 0


def replay_ids(pool: Sequence[str], n_adapt: int, share: float, seed: int = 0) -> list[str]:
    """Synthetic tracks replayed beside ``n_adapt`` adapt tracks so they make ``share`` of the set."""
    if share <= 0 or not pool:
        return []
    wanted = n_replay_tracks(n_adapt, share)
    if wanted > len(pool):
        log.warning("replay %.2f asks for %d synthetic tracks, only %d indexed: using them all",
                    share, wanted, len(pool))
    return sorted(hash_ranked(pool, seed)[:wanted])


# ----------------------------------------------------------------------------- adaptation
def _settings_fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _method_name(method: str, label: str) -> str:
    return f"{method} ({label})"


def unlabelled_method(name: str) -> str:
    """The method of a labelled name (``crnn_dbn (pretrained)`` -> ``crnn_dbn``); other names as they are."""
    return name.split(" (", 1)[0]


def keep_norm_statistics(setting: bool | str, n_tracks: int) -> bool:
    """Whether adapting on ``n_tracks`` annotated tracks keeps the starting model's BatchNorm
    running statistics: ``setting`` itself, or for ``"auto"`` whether ``n_tracks`` is below
    :data:`KEEP_NORM_STATISTICS_BELOW_TRACKS` (statistics estimated on so few tracks cost
    accuracy; the weights train either way)."""
    if setting == "auto":
        return n_tracks < KEEP_NORM_STATISTICS_BELOW_TRACKS
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"keep_norm_statistics must be true, false or 'auto', got {setting!r}")


@dataclass
class Adaptation:
    """One adaptation of ``cfg.init_from``: the indexed tracks and their ``stores``, the settings
    ``cfg``, and the synthetic tracks it may replay beside the user's (``replay_pool``; how many
    is :func:`replay_ids`'s choice for ``cfg.replay``). ``progress``: tqdm progress bars.

    Its methods adapt a pair (:meth:`adapt_models`), score one (:meth:`evaluate_models`), and
    make the cross-validated estimate, whole (:meth:`cross_validate`) or piece by piece as the
    workflow's ``adapt`` rules run it (:meth:`evaluate_baselines`, :meth:`run_fold`, then
    :func:`combine_cv`).
    """

    stores: TrackStores
    cfg: AdaptConfig
    replay_pool: Sequence[str] = ()
    progress: bool = True

    @property
    def groups(self) -> dict[str, str]:
        """``{track_id: group}`` of the indexed tracks that have one: they share a CV fold."""
        from .data.tracks import track_groups

        return track_groups(self.stores.tracks)

    def adapt_models(self, train_ids: Sequence[str], out_dir: str | os.PathLike) -> Path:
        """Fine-tune the CRNN, then the LTM, of ``cfg.init_from`` on ``train_ids`` plus the replayed
        synthetic tracks (:func:`replay_ids` of ``replay_pool``).

        Writes ``out_dir/{crnn,ltm}/model.pt`` (usable as ``--models out_dir``) and returns
        ``out_dir``. The LTM fine-tunes on the adapted CRNN's activations of the same tracks,
        augmented (``input_source: augment``). Nothing is redone when ``out_dir/adapt.json``
        records the same settings and tracks.
        """
        from .activations import extract_shard_activations, file_sha256
        from .pretrained import resolve_model_file
        from .training.crnn import train_crnn
        from .training.ltm import train_ltm
        from .training.stores import TrainingStores

        cfg, stores, progress = self.cfg, self.stores, self.progress
        out_dir = Path(out_dir)
        replay = replay_ids(self.replay_pool, len(train_ids), cfg.replay, cfg.fold_seed)
        ids = sorted(dict.fromkeys([*train_ids, *replay]))
        if not train_ids:
            raise ValueError("no track to adapt on")
        init_crnn = resolve_model_file(cfg.init_from, "crnn")
        init_ltm: Path | None = resolve_model_file(cfg.init_from, "ltm")
        if not init_ltm.is_file():  # e.g. a CRNN-only snapshot: the LTM learns from scratch
            log.warning("%s has no ltm/model.pt: the LTM trains from scratch (sizes: the ltm defaults)", cfg.init_from)
            init_ltm = None
        by_shard = stores.by_shard(ids)
        mel_paths = [stores.mels[s] for s in by_shard]
        target_paths = [stores.targets[s] for s in by_shard]
        settings = {"config": {k: v for k, v in cfg.to_dict().items() if k in ("init_from", "crnn", "ltm")},
                    "init_sha256": [file_sha256(init_crnn), init_ltm and file_sha256(init_ltm)],
                    "train_ids": sorted(train_ids), "replay_ids": sorted(replay),
                    # a rewritten store re-runs the trainers (which resume when their data did not change)
                    "stores": [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in mel_paths + target_paths]}
        record = out_dir / "adapt.json"
        done = all((out_dir / kind / "model.pt").is_file() for kind in ("crnn", "ltm"))
        fingerprint = _settings_fingerprint(settings)
        if done and record.is_file() and json.loads(record.read_text()).get("fingerprint") == fingerprint:
            log.info("%s: adapted already with these settings", out_dir)
            return out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        record.unlink(missing_ok=True)
        tracks_csv = out_dir / "tracks.csv"
        atomic_write(tracks_csv, partial(stores.rows(ids).assign(split="train").to_csv, index=False))
        log.info("adapting %s on %d tracks (+%d replayed) into %s", cfg.init_from, len(train_ids), len(replay), out_dir)

        crnn_cfg, ltm_cfg = ({**block, "keep_norm_statistics": keep_norm_statistics(
            block.get("keep_norm_statistics", False), len(train_ids))} for block in (cfg.crnn, cfg.ltm))
        if cfg.crnn.get("keep_norm_statistics") == "auto" and crnn_cfg["keep_norm_statistics"]:
            log.info("%d annotated tracks (fewer than %d): the CRNN keeps the starting model's BatchNorm statistics "
                     "(keep_norm_statistics: auto)", len(train_ids), KEEP_NORM_STATISTICS_BELOW_TRACKS)
        train_crnn(TrainingStores(mel_paths, target_paths, tracks_csv), {**crnn_cfg, "init_from": str(init_crnn)},
                   out_dir / "crnn", progress=progress)
        activation_paths = []
        for shard, shard_ids in by_shard.items():
            path = out_dir / "activations" / f"{shard}.h5"
            extract_shard_activations(out_dir / "crnn" / "model.pt", stores.mels[shard], path, track_ids=shard_ids,
                                      device=cfg.crnn.get("device", "auto"), progress=progress)
            activation_paths.append(path)
        ltm_cfg = {**ltm_cfg, "input_source": "augment", "augment": True, "init_from": init_ltm and str(init_ltm)}
        train_ltm(TrainingStores(activation_paths, target_paths, tracks_csv), ltm_cfg, out_dir / "ltm",
                  progress=progress)
        atomic_write_text(record, json.dumps({"fingerprint": fingerprint, **settings}, indent=1) + "\n")
        return out_dir

    # ------------------------------------------------------------------------- evaluation
    def _score(self, rows: pd.DataFrame, prediction_dirs: Mapping[str, Path]) -> pd.DataFrame:
        from .evaluation import evaluate_predictions, references_from_targets

        references = references_from_targets(self.stores.target_paths(rows["track_id"]), rows)
        rows = rows.assign(split=CV_SPLIT)
        return evaluate_predictions(rows, references, prediction_dirs, self.cfg.trim_seconds)

    def evaluate_models(self, models_dir: str | os.PathLike, track_ids: Sequence[str], out_dir: str | os.PathLike,
                        label: str) -> pd.DataFrame:
        """Predict ``track_ids`` with the CRNN + LTM of ``models_dir`` by every ``cfg.methods``, score them.

        Writes ``out_dir/predictions/<method>/`` and ``out_dir/per_track.csv`` (methods named
        ``"<method> (<label>)"``, split ``cv``) and returns the per-track table.
        """
        from .activations import extract_ltm_shard, extract_shard_activations
        from .inference import predict_store
        from .methods import METHODS

        cfg, stores, progress = self.cfg, self.stores, self.progress
        models_dir, out_dir = Path(models_dir), Path(out_dir)
        methods = list(cfg.methods)
        if not (models_dir / "ltm" / "model.pt").is_file():
            methods = [m for m in methods if METHODS[m].source == "crnn"]
            log.warning("%s has no ltm/model.pt: scoring %s only", models_dir, ", ".join(methods))
        rows = stores.rows(sorted(track_ids))
        tracks_csv = out_dir / "tracks.csv"
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(tracks_csv, partial(rows.to_csv, index=False))
        sources = {METHODS[m].source for m in methods}
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
        for method in methods:
            folder = out_dir / "predictions" / method
            predict_store(method, dict(cfg.inference), activations[METHODS[method].source], tracks_csv, folder,
                          progress=progress)
            prediction_dirs[_method_name(method, label)] = folder
        per_track = self._score(rows, prediction_dirs)
        _write_table(per_track, out_dir / "per_track.csv")
        return per_track

    def evaluate_peers(self, track_ids: Sequence[str], out_dir: str | os.PathLike) -> pd.DataFrame:
        """The peer trackers (librosa; config ``reference_trackers``) on the same tracks: ``out_dir/per_track.csv``."""
        from .data.store import read_attrs
        from .peers import write_peer_predictions

        out_dir = Path(out_dir)
        rows = self.stores.rows(sorted(track_ids))
        sr = int(read_attrs(next(iter(self.stores.mels.values())))["sr"])  # the analysis rate of the mels
        prediction_dirs = {}
        for tracker in self.cfg.reference_trackers:
            folder = out_dir / "predictions" / tracker
            if not all((folder / f"{t}.beats").is_file() for t in rows["track_id"]):  # a rerun skips a finished tracker
                write_peer_predictions(rows, folder, tracker, sr=sr)
            prediction_dirs[tracker] = folder
        per_track = self._score(rows, prediction_dirs)
        _write_table(per_track, out_dir / "per_track.csv")
        return per_track

    # ------------------------------------------------------------------------- the estimate
    def run_fold(self, track_ids: Sequence[str], fold: int, out_dir: str | os.PathLike,
                 n_tracks: int | None = None) -> pd.DataFrame:
        """Adapt fold model ``fold`` (on ``n_tracks`` of its training tracks, default all) and
        score it on the fold's own tracks, which it never trained on. Returns per_track.csv's table."""
        cfg, groups = self.cfg, self.groups
        out_dir = Path(out_dir)
        train = fold_train_ids(track_ids, fold, cfg.folds, cfg.fold_seed, n_tracks, groups)
        held_out = [t for t, k in fold_of_tracks(track_ids, cfg.folds, cfg.fold_seed, groups).items() if k == fold]
        leaked = set(train) & set(held_out)
        if leaked:  # cannot happen by construction; a guard for the estimate's honesty
            raise AssertionError(f"fold {fold} would train on its own tracks {sorted(leaked)[:5]}")
        self.adapt_models(train, out_dir)
        per_track = self.evaluate_models(out_dir, held_out, out_dir / "heldout", CV_LABEL.format(folds=cfg.folds))
        per_track = per_track.assign(fold=fold, n_train_tracks=len(train))
        _write_table(per_track, out_dir / "heldout" / "per_track.csv")
        return per_track

    def evaluate_baselines(self, track_ids: Sequence[str], cv_dir: str | os.PathLike) -> None:
        """The unadapted model and the reference trackers on every adapt track (``cv_dir/{pretrained,reference}``)."""
        from .pretrained import PREFIX, models_dir

        init_from = self.cfg.init_from
        init_dir = models_dir(init_from) if str(init_from).startswith(PREFIX) else Path(init_from)
        self.evaluate_models(init_dir, track_ids, Path(cv_dir) / "pretrained", PRETRAINED_LABEL)
        self.evaluate_peers(track_ids, Path(cv_dir) / "reference")  # folder name kept: finished runs stay valid

    def cross_validate(self, track_ids: Sequence[str], cv_dir: str | os.PathLike) -> dict[str, pd.DataFrame]:
        """The whole estimate in one process, as the workflow's ``adapt`` rules run it piece by piece.

        Writes under ``cv_dir``: ``pretrained/``, ``reference/``, ``fold<k>/``,
        ``curve/n<n>/fold<k>/``, then :func:`combine_cv`'s tables. Fold models already adapted
        are not redone (a killed run resumes). Returns ``per_track``, ``summary``, ``learning_curve``, ``gain``.
        """
        from tqdm.auto import tqdm

        cv_dir = Path(cv_dir)
        track_ids = sorted(track_ids)
        plan = curve_plan(track_ids, self.cfg, self.groups)
        jobs = [(k, None) for k in range(self.cfg.folds)] + [(k, n) for n in plan.sizes for k in plan.folds]
        self.evaluate_baselines(track_ids, cv_dir)
        for fold, n_tracks in tqdm(jobs, desc="adapting fold models", unit="model", disable=not self.progress):
            out = cv_dir / f"fold{fold}" if n_tracks is None else cv_dir / "curve" / f"n{n_tracks}" / f"fold{fold}"
            self.run_fold(track_ids, fold, out, n_tracks=n_tracks)
        return combine_cv(cv_dir, track_ids, self.cfg, self.groups)


# ----------------------------------------------------------------------------- tables
_SPREAD_COLUMNS = ("beat_f", "downbeat_f", "tempo_acc1")


def summarize_cv(per_track: pd.DataFrame) -> pd.DataFrame:
    """One row per method x dataset (and ``all``): the evaluation's summary columns, plus the
    per-track spread (``<metric>_std``, ``<metric>_q25``, ``<metric>_q75``) of beat F,
    downbeat F and Acc1, and the 95 % bootstrap interval of their mean over tracks
    (``<metric>_ci_low``, ``<metric>_ci_high``; :func:`beatgrid.evaluation.mean_ci`)."""
    from .evaluation import mean_ci, summarize

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
            extra[f"{metric}_ci_low"], extra[f"{metric}_ci_high"] = mean_ci(values)
        spread.append(extra)
    return pd.concat([summary, pd.DataFrame(spread, index=summary.index)], axis=1)


#: Columns of :func:`adaptation_gain` (``gain.csv``).
GAIN_COLUMNS = ["dataset", "method", "n_tracks", *(f"{metric}_{part}" for metric in ("beat_f", "downbeat_f")
                                                   for part in ("gain", "gain_ci_low", "gain_ci_high"))]


def adaptation_gain(per_track: pd.DataFrame, folds: int) -> pd.DataFrame:
    """What adaptation changed, track by track: for every method scored both unadapted
    (``(pretrained)``) and cross-validated (``(adapted, <folds>-fold CV)``), per dataset and
    ``all``, the mean of adapted minus pretrained beat F and downbeat F over the tracks
    both scored, with its 95 % paired bootstrap interval (:func:`beatgrid.evaluation.mean_ci`
    of the differences). An interval that holds 0 means these tracks cannot tell the
    two models apart. Columns :data:`GAIN_COLUMNS`.
    """
    from .evaluation import mean_ci

    records = []
    for base in dict.fromkeys(map(unlabelled_method, per_track["method"])):
        pretrained = per_track[per_track["method"] == _method_name(base, PRETRAINED_LABEL)]
        adapted = per_track[per_track["method"] == _method_name(base, CV_LABEL.format(folds=folds))]
        if pretrained.empty or adapted.empty:
            continue
        pairs = pretrained.merge(adapted, on=["track_id", "dataset"], suffixes=("_pretrained", "_adapted"))
        for dataset in [*dict.fromkeys(pairs["dataset"]), "all"]:
            rows = pairs if dataset == "all" else pairs[pairs["dataset"] == dataset]
            record: dict[str, Any] = {"dataset": dataset, "method": base, "n_tracks": len(rows)}
            for metric in ("beat_f", "downbeat_f"):
                change = (rows[f"{metric}_adapted"] - rows[f"{metric}_pretrained"]).to_numpy(dtype=float)
                finite = change[np.isfinite(change)]
                record[f"{metric}_gain"] = float(finite.mean()) if finite.size else math.nan
                record[f"{metric}_gain_ci_low"], record[f"{metric}_gain_ci_high"] = mean_ci(finite)
            records.append(record)
    return pd.DataFrame.from_records(records, columns=GAIN_COLUMNS)


def learning_curve_table(points: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """Mean beat F, downbeat F and Acc1 per method against the number of adapt tracks.

    ``points``: number of annotated tracks -> per-track table of the models adapted on that
    many (0: the unadapted model), all scored on the same held-out tracks. Method names lose
    their ``(label)`` suffix so the curve joins them. ``<metric>_ci_low`` / ``_ci_high``: the
    95 % bootstrap interval of each mean (:func:`beatgrid.evaluation.mean_ci`).
    """
    from .evaluation import mean_ci

    intervals = [f"{m}_{end}" for m in _SPREAD_COLUMNS for end in ("ci_low", "ci_high")]
    records = []
    for n_tracks, per_track in sorted(points.items()):
        for method, rows in per_track.groupby(per_track["method"].map(unlabelled_method), sort=False):
            record = {"n_tracks": int(n_tracks), "method": method, "n_eval_tracks": len(rows),
                      **{m: float(rows[m].mean()) for m in _SPREAD_COLUMNS}}
            for m in _SPREAD_COLUMNS:
                record[f"{m}_ci_low"], record[f"{m}_ci_high"] = mean_ci(rows[m].to_numpy(dtype=float))
            records.append(record)
    return pd.DataFrame.from_records(records, columns=["n_tracks", "method", "n_eval_tracks", *_SPREAD_COLUMNS,
                                                       *intervals])


#: Smallest mean loss of F that :func:`adaptation_losses` reports (a surer but smaller one is noise to a user).
MIN_REPORTED_LOSS = 0.02
_GAIN_METRICS = (("beat_f", "beat F"), ("downbeat_f", "downbeat F"))


def _gain_text(record: Mapping[str, Any], metric: str, name: str) -> str:
    """``beat F +0.045 (95 % CI -0.011 to +0.103)`` of one :func:`adaptation_gain` row."""
    return (f"{name} {record[f'{metric}_gain']:+.3f} (95 % CI {record[f'{metric}_gain_ci_low']:+.3f} to "
            f"{record[f'{metric}_gain_ci_high']:+.3f})")


def gain_lines(gain: pd.DataFrame) -> list[str]:
    """One line per method: what adaptation changed on all tracks (``gain``'s ``all`` rows),
    each F with its 95 % interval."""
    lines = []
    for record in gain[gain["dataset"] == "all"].to_dict("records"):
        parts = [_gain_text(record, metric, name) for metric, name in _GAIN_METRICS
                 if not math.isnan(record[f"{metric}_gain"])]
        lines.append(f"adapted - pretrained, {record['method']}, {record['n_tracks']} tracks: " + ", ".join(parts))
    return lines


def adaptation_losses(gain: pd.DataFrame) -> list[str]:
    """One sentence per method x dataset of ``gain`` (:func:`adaptation_gain`) whose whole
    paired interval lies below 0 and whose mean loss is at least :data:`MIN_REPORTED_LOSS`:
    music on which the adapted model scored lower than the one it started from (the shared
    clips' Filosax jazz, for one). With a handful of tracks the interval is optimistic, so
    the sentence asks for a check rather than claiming a loss."""
    sentences = []
    for record in gain.to_dict("records"):
        for metric, name in _GAIN_METRICS:
            if record[f"{metric}_gain_ci_high"] < 0 and record[f"{metric}_gain"] <= -MIN_REPORTED_LOSS:  # NaN: False
                sentences.append(f"the adapted {record['method']} scored lower on {record['dataset']} "
                                 f"({record['n_tracks']} tracks): {_gain_text(record, metric, name)}; "
                                 "check such music before replacing the pretrained model")
    return sentences


# ----------------------------------------------------------------------------- the learning curve, the whole estimate
@dataclass(frozen=True)
class CurvePlan:
    """Which fold models the learning curve adds: ``sizes`` x ``folds`` (``n_full``: the CV's own size)."""

    folds: list[int]
    sizes: list[int]
    n_full: int


def curve_plan(track_ids: Sequence[str], cfg: AdaptConfig, groups: Mapping[str, str] | None = None) -> CurvePlan:
    """The learning curve's numbers of tracks (below the folds' training size) and folds."""
    folds = list(range(min(int(cfg.learning_curve_folds), int(cfg.folds))))
    n_full = min((len(fold_train_ids(track_ids, k, cfg.folds, cfg.fold_seed, groups=groups)) for k in folds),
                 default=0)
    return CurvePlan(folds, sorted({int(n) for n in cfg.learning_curve if 0 < int(n) < n_full}), n_full)


def _read_per_track(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"track_id": str})


def _write_table(table: pd.DataFrame, path: Path) -> None:
    """A per-track or summary table as CSV (6 significant digits), atomically."""
    atomic_write(path, partial(table.to_csv, index=False, float_format="%.6g"))


def combine_cv(cv_dir: str | os.PathLike, track_ids: Sequence[str], cfg: AdaptConfig,
               groups: Mapping[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """Gather the pieces under ``cv_dir`` into ``per_track.csv``, ``summary.csv``, ``learning_curve.csv``
    and ``gain.csv`` (:func:`adaptation_gain`; a warning for each :func:`adaptation_losses`);
    ``groups``: the adapt tracks' groups, as the folds were dealt.

    ``learning_curve.csv`` has the mean scores on the first folds' tracks for 0 tracks (the
    unadapted model), every curve size, and the folds' full training size.
    """
    cv_dir = Path(cv_dir)
    pretrained = _read_per_track(cv_dir / "pretrained" / "per_track.csv")
    folds = [_read_per_track(cv_dir / f"fold{k}" / "heldout" / "per_track.csv") for k in range(cfg.folds)]
    reference = _read_per_track(cv_dir / "reference" / "per_track.csv")
    per_track = pd.concat([pretrained, *folds, reference], ignore_index=True)
    cv_rows = per_track[per_track["method"].str.endswith(f"({CV_LABEL.format(folds=cfg.folds)})")]
    counts = cv_rows.groupby("method")["track_id"].agg(lambda ids: sorted(ids) == sorted(track_ids))
    if not counts.all():  # each track exactly once, from the model that did not see it
        raise ValueError(f"{cv_dir}: the fold models do not score every adapt track once: {counts.to_dict()}")
    summary = summarize_cv(per_track)
    plan = curve_plan(track_ids, cfg, groups)
    held_out = set(pd.concat([folds[k] for k in plan.folds])["track_id"]) if plan.folds else set()
    points = {0: pretrained[pretrained["track_id"].isin(held_out)]}
    for n in plan.sizes:
        points[n] = pd.concat([_read_per_track(cv_dir / "curve" / f"n{n}" / f"fold{k}" / "heldout" / "per_track.csv")
                               for k in plan.folds], ignore_index=True)
    if plan.folds:
        points[plan.n_full] = pd.concat([folds[k] for k in plan.folds], ignore_index=True)
    curve = learning_curve_table(points)
    gain = adaptation_gain(per_track, cfg.folds)
    for sentence in adaptation_losses(gain):
        log.warning(sentence)
    for table, name in ((per_track, "per_track.csv"), (summary, "summary.csv"), (curve, "learning_curve.csv"),
                        (gain, "gain.csv")):
        _write_table(table, cv_dir / name)
    return {"per_track": per_track, "summary": summary, "learning_curve": curve, "gain": gain}


# ----------------------------------------------------------------------------- outside the workflow
def prepare_stores(
    datasets: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    work_dir: str | os.PathLike,
    *,
    replay_share: float = 0.0,
    progress: bool = True,
) -> tuple[TrackStores, pd.DataFrame]:
    """Index ``datasets`` and compute their mel and target stores as the workflow does.

    ``config``: a workflow config (``split``, ``features``, ``targets`` blocks).
    ``replay_share``: render as many synthetic tracks (:func:`beatgrid.data.synth.write_demo_batch`,
    the demo's generator) as make this share beside the user's tracks, indexed as dataset
    :data:`REPLAY_DATASET`, for replay.
    Writes ``work_dir/index/{tracks,rejected}.csv`` and ``work_dir/features/{mels,targets}/<shard>.h5``;
    a store that already holds exactly its shard's tracks is kept (a killed run resumes).
    Returns the stores and the rejected inputs (each with its reason).
    """
    from .data.index import build_index
    from .data.tracks import write_index
    from .data.store import list_track_ids
    from .data.synth import write_demo_batch
    from .features import MelConfig, compute_shard_mels, compute_shard_targets

    work_dir = Path(work_dir)
    datasets = dict(datasets)
    split = {**dict(config["split"]), "test_datasets": []}
    tracks_per_shard = int(config["features"]["tracks_per_shard"])
    synth_dirs = {}
    replay_tracks = 0
    if replay_share > 0:
        replay_tracks = n_replay_tracks(len(build_index(datasets, split, tracks_per_shard)[0]), replay_share)
    if replay_tracks > 0:
        replay_dir = work_dir / "replay" / "batch0"
        if sorted(p.stem for p in replay_dir.glob("*.wav")) != [f"track{i:04d}" for i in range(replay_tracks)]:
            log.info("rendering %d synthetic tracks to replay", replay_tracks)
            write_demo_batch(replay_dir, range(replay_tracks), seed=0, duration_s=30.0, sr=int(config["features"]["sr"]))
        datasets[REPLAY_DATASET] = {"format": "synth", "n_tracks": replay_tracks, "duration_s": 30.0, "seed": 0}
        synth_dirs[REPLAY_DATASET] = [replay_dir]
    tracks, rejected = build_index(datasets, split, tracks_per_shard, synth_dirs=synth_dirs)
    write_index(tracks, rejected, work_dir / "index" / "tracks.csv", work_dir / "index" / "rejected.csv")
    for row in rejected.itertuples():
        log.warning("rejected %s: %s", row.audio_path or row.annotation_path, row.reason)
    if tracks.empty:
        raise ValueError(f"no usable track ({len(rejected)} inputs rejected: see {work_dir / 'index' / 'rejected.csv'})")
    features, targets = dict(config["features"]), dict(config["targets"])
    mel_config = MelConfig.from_dict(features)
    mels, target_stores = {}, {}
    for shard, rows in tracks.groupby("shard", sort=True):
        mels[shard] = work_dir / "features" / "mels" / f"{shard}.h5"
        target_stores[shard] = work_dir / "features" / "targets" / f"{shard}.h5"
        wanted = sorted(rows["track_id"])
        if not (mels[shard].is_file() and sorted(list_track_ids(mels[shard])) == wanted):
            compute_shard_mels(rows, mels[shard], mel_config, progress=progress)
        if not (target_stores[shard].is_file() and sorted(list_track_ids(target_stores[shard])) == wanted):
            compute_shard_targets(rows, target_stores[shard], sr=features["sr"], hop_length=features["hop_length"],
                                  widen_frames=targets["widen_frames"], widen_value=targets["widen_value"],
                                  progress=progress)
    return TrackStores(tracks, mels, target_stores), rejected
