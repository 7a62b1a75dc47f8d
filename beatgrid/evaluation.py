"""Evaluation of beat, downbeat, tempo and beatgrid predictions against annotations.

All beat metrics come from :mod:`mir_eval.beat`; this module only prepares the inputs
(sorting, trimming), adds tempo accuracy and the beatgrid phase error, and aggregates
per-track scores into the summary tables of the report.

Definitions (all times in seconds unless a name ends in ``_ms``):

Beat metrics (``beat_f``, ``beat_cemgil``, ``beat_goto``, ``beat_pscore``,
``beat_cmlc``, ``beat_cmlt``, ``beat_amlc``, ``beat_amlt``, ``beat_infogain``)
    :func:`mir_eval.beat.evaluate` with its defaults (F-measure window ±70 ms, Cemgil
    sigma 40 ms, continuity thresholds 17.5 %) after removing reference *and* estimated
    beats before ``trim_seconds`` (5 s is the MIREX convention; 0 disables trimming).
    NaN when the trimmed reference has no beat.

``downbeat_f``
    :func:`mir_eval.beat.f_measure` (±70 ms) on downbeats after the same trimming.
    NaN — excluded from every mean, never scored 0 — when the track has no downbeat
    annotation or the method makes no downbeat estimate (a ``.beats`` file without a
    position column, or with all positions 0).

``ref_bpm``, ``est_bpm``, ``tempo_acc1``, ``tempo_acc2``
    Reference tempo: the label BPM where the annotation is a constant-tempo label,
    else 60 / median inter-beat interval of the annotated beats. Estimated tempo: the
    beatgrid's ``bpm`` (or a ``bpm`` in the prediction JSON), else 60 / median
    inter-beat interval of the estimated beats. Acc1 is 1 when
    ``|est - ref| <= 0.04 * ref``; Acc2 also accepts ``ref`` times 2, 3, 1/2 and 1/3
    (each with a 4 % tolerance). A method without a tempo estimate scores 0.

``grid_phase_error_ms``, ``grid_max_error_ms``, ``grid_phase_bias_ms``
    For methods that write a beatgrid (prediction JSON with ``bpm`` and
    ``downbeatOffset``): the grid is the infinite lattice
    ``downbeatOffset + k * 60 / bpm`` (k any integer), and for every annotated beat
    (all of them, no trimming: a grid has no warm-up) the signed distance to its
    nearest grid line is taken. ``grid_phase_error_ms`` is the median absolute
    distance, ``grid_max_error_ms`` the largest, ``grid_phase_bias_ms`` the median
    signed distance (grid line minus annotated beat; positive = grid late). The phase
    error is only meaningful together with a correct tempo: a grid at twice the
    annotated tempo still puts a line on every annotated beat, which is why
    ``tempo_acc1`` sits beside it. DJ use needs it below about 20 ms.

Summary (:func:`summarize`): one row per method x dataset x split, plus a row with
dataset ``all`` per method x split. Metric columns are means over tracks ignoring NaN
(tempo accuracies are fractions of tracks); the ``grid_*_ms`` columns are *medians*
over tracks, because one track with a wrong tempo gives an error of up to half a beat
period and would dominate a mean.

Variants: a method name may carry a variant suffix after ``@`` (``crnn_peaks@thr0.3``).
:func:`select_best_variants` chooses, per base method, the variant with the highest
mean ``beat_f`` on the ``val`` split, and :func:`summarize` reports that variant's rows
(all splits) under the base method name, with the chosen variant in column
``variant``. The per-track table keeps every variant.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import mir_eval
import numpy as np
import pandas as pd

from .data.tracks import truthy
from .io import atomic_write, atomic_write_text
from .methods import VARIANT_SEPARATOR, base_method
from .predictions import read_prediction_beats, read_prediction_grid

__all__ = [
    "Reference",
    "BEAT_METRICS",
    "SUMMARY_COLUMNS",
    "VARIANT_SEPARATOR",
    "base_method",
    "tempo_from_beats",
    "tempo_accuracy",
    "grid_phase_errors",
    "evaluate_track",
    "references_from_targets",
    "references_from_annotations",
    "evaluate_predictions",
    "select_best_variants",
    "variant_table",
    "summarize",
    "mean_ci",
    "summary_markdown",
    "evaluate_run",
]

#: mir_eval.beat.evaluate key -> column name.
BEAT_METRICS: dict[str, str] = {
    "F-measure": "beat_f",
    "Cemgil": "beat_cemgil",
    "Goto": "beat_goto",
    "P-score": "beat_pscore",
    "Correct Metric Level Continuous": "beat_cmlc",
    "Correct Metric Level Total": "beat_cmlt",
    "Any Metric Level Continuous": "beat_amlc",
    "Any Metric Level Total": "beat_amlt",
    "Information gain": "beat_infogain",
}

#: Relative tolerance of Acc1 / Acc2 (4 %).
TEMPO_TOLERANCE = 0.04
#: Metrical factors accepted by Acc2.
ACC2_FACTORS = (1.0, 2.0, 3.0, 1.0 / 2.0, 1.0 / 3.0)
#: Order of splits in summaries and reports.
SPLIT_ORDER = ("test", "val", "train")

_MEAN_COLUMNS = [
    *BEAT_METRICS.values(),
    "downbeat_f",
    "tempo_acc1",
    "tempo_acc2",
    "grid_confidence",
]
_MEDIAN_COLUMNS = ["grid_phase_error_ms", "grid_max_error_ms", "grid_phase_bias_ms"]

#: Columns of the summary table, in order.
SUMMARY_COLUMNS = [
    "method",
    "variant",
    "dataset",
    "split",
    "n_tracks",
    "n_downbeat_tracks",
    "n_grid_tracks",
    *_MEAN_COLUMNS,
    *_MEDIAN_COLUMNS,
]


@dataclass(frozen=True)
class Reference:
    """Annotated reference of one track.

    Attributes:
        beat_times: annotated beat times in seconds, ascending.
        downbeat_times: annotated downbeat times in seconds, or ``None`` when the
            annotation has no downbeats (then downbeat metrics are NaN).
        bpm: the annotated tempo in BPM when the annotation states it (constant-tempo
            labels), else ``None`` (derived from the beats).
    """

    beat_times: np.ndarray
    downbeat_times: np.ndarray | None = None
    bpm: float | None = None


# ---------------------------------------------------------------------------
# per-track metrics


def _as_times(times: Iterable[float] | None, what: str) -> np.ndarray:
    """Return ``times`` as a sorted 1-d float64 array; raise on NaN / inf / negative."""
    if times is None:
        return np.zeros(0)
    arr = np.asarray(times, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contain NaN or inf")
    return np.sort(arr)


def _trim(times: np.ndarray, trim_seconds: float) -> np.ndarray:
    """Drop times before ``trim_seconds`` (mir_eval.beat.trim_beats with a configurable start)."""
    return mir_eval.beat.trim_beats(times, min_beat_time=float(trim_seconds))


def tempo_from_beats(beat_times: np.ndarray) -> float:
    """Tempo in BPM from beat times in seconds: 60 / median inter-beat interval (NaN if < 2 beats)."""
    beat_times = np.asarray(beat_times, dtype=np.float64)
    if beat_times.size < 2:
        return math.nan
    ibi = np.median(np.diff(np.sort(beat_times)))
    return float(60.0 / ibi) if ibi > 0 else math.nan


def tempo_accuracy(ref_bpm: float, est_bpm: float, tolerance: float = TEMPO_TOLERANCE) -> tuple[float, float]:
    """Return (Acc1, Acc2) as 0.0/1.0 for one tempo estimate.

    Acc1: ``|est - ref| <= tolerance * ref``. Acc2: the same for any of ``ref`` times
    1, 2, 3, 1/2, 1/3. NaN when the reference tempo is unknown; 0 when there is no
    estimate (``est_bpm`` NaN).
    """
    if not np.isfinite(ref_bpm) or ref_bpm <= 0:
        return math.nan, math.nan
    if not np.isfinite(est_bpm) or est_bpm <= 0:
        return 0.0, 0.0
    acc1 = abs(est_bpm - ref_bpm) <= tolerance * ref_bpm
    acc2 = any(abs(est_bpm - f * ref_bpm) <= tolerance * f * ref_bpm for f in ACC2_FACTORS)
    return float(acc1), float(acc2)


def grid_phase_errors(beat_times: np.ndarray, bpm: float, offset_s: float) -> np.ndarray:
    """Signed distance in seconds from each annotated beat to its nearest grid line.

    The grid is the lattice ``offset_s + k * 60 / bpm`` for every integer k, so the result
    does not depend on which grid line the offset names. Positive = grid line after the beat.
    """
    if not (np.isfinite(bpm) and bpm > 0 and np.isfinite(offset_s)):
        raise ValueError(f"grid needs a positive finite bpm and a finite offset, got bpm={bpm}, offset={offset_s}")
    period = 60.0 / bpm
    beat_times = np.asarray(beat_times, dtype=np.float64)
    k = np.round((beat_times - offset_s) / period)
    return offset_s + k * period - beat_times


def _grid_metrics(ref_beats: np.ndarray, grid: Mapping | None) -> dict[str, float]:
    out = {
        "grid_bpm": math.nan,
        "grid_confidence": math.nan,
        "grid_beats_per_bar": math.nan,
        "grid_phase_error_ms": math.nan,
        "grid_max_error_ms": math.nan,
        "grid_phase_bias_ms": math.nan,
    }
    if not _is_grid(grid):
        return out
    bpm = float(grid["bpm"])
    out["grid_bpm"] = bpm
    out["grid_confidence"] = _float_or_nan(grid.get("confidence"))
    out["grid_beats_per_bar"] = _float_or_nan(grid.get("beatsPerBar"))
    if ref_beats.size:
        errors_ms = 1000.0 * grid_phase_errors(ref_beats, bpm, float(grid["downbeatOffset"]))
        out["grid_phase_error_ms"] = float(np.median(np.abs(errors_ms)))
        out["grid_max_error_ms"] = float(np.max(np.abs(errors_ms)))
        out["grid_phase_bias_ms"] = float(np.median(errors_ms))
    return out


def _is_grid(grid: Mapping | None) -> bool:
    """True for a beatgrid JSON: a positive ``bpm`` and a ``downbeatOffset``.

    A JSON whose ``gridSource`` is ``median_beat_interval`` only summarises a method's
    beats (peaks, DBN, online) and is not scored as a beatgrid.
    """
    if not grid or grid.get("gridSource") == "median_beat_interval":
        return False
    bpm = _float_or_nan(grid.get("bpm"))
    offset = _float_or_nan(grid.get("downbeatOffset"))
    return bool(np.isfinite(bpm) and bpm > 0 and np.isfinite(offset))


def _float_or_nan(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def evaluate_track(
    ref_beats: np.ndarray,
    ref_downbeats: np.ndarray | None,
    est_beats: np.ndarray,
    est_downbeats: np.ndarray | None,
    *,
    ref_bpm: float | None = None,
    est_bpm: float | None = None,
    grid: Mapping | None = None,
    trim_seconds: float = 5.0,
) -> dict[str, float]:
    """Score one track's prediction against its annotation.

    Args:
        ref_beats: annotated beat times, seconds.
        ref_downbeats: annotated downbeat times, seconds; ``None`` when the annotation
            has none (``downbeat_f`` is then NaN).
        est_beats: estimated beat times, seconds.
        est_downbeats: estimated downbeat times, seconds; ``None`` when the method makes
            no downbeat estimate (``downbeat_f`` NaN), an empty array when it does but
            found none (``downbeat_f`` 0).
        ref_bpm: annotated tempo (label BPM); default 60 / median inter-beat interval.
        est_bpm: estimated tempo; default the grid's ``bpm``, else from ``est_beats``.
        grid: beatgrid dict in the label JSON format (``bpm``, ``downbeatOffset``,
            ``confidence``, ``beatsPerBar``); enables the ``grid_*`` metrics.
        trim_seconds: beats and downbeats before this time are ignored by the beat and
            downbeat metrics (not by tempo and grid metrics).

    Returns:
        dict of metric name -> float (see the module docstring for definitions).
    """
    if trim_seconds < 0:
        raise ValueError(f"trim_seconds must be >= 0, got {trim_seconds}")
    ref_beats = _as_times(ref_beats, "reference beat times")
    est_beats = _as_times(est_beats, "estimated beat times")

    scores: dict[str, float] = {}
    ref_trimmed = _trim(ref_beats, trim_seconds)
    est_trimmed = _trim(est_beats, trim_seconds)
    with warnings.catch_warnings():
        # mir_eval warns about empty or too short inputs and then scores them 0, as wanted;
        # its Goto score takes the std of an empty slice on clips of a few beats (numpy warns).
        warnings.simplefilter("ignore", UserWarning)
        warnings.filterwarnings("ignore", "Degrees of freedom <= 0", RuntimeWarning)
        if ref_trimmed.size == 0:
            scores.update({name: math.nan for name in BEAT_METRICS.values()})
        else:
            # Already trimmed: min_beat_time=0 stops evaluate() trimming again at its 5 s default.
            with np.errstate(invalid="ignore"):  # ... and divides by that std (the Goto score is 0)
                beat_scores = mir_eval.beat.evaluate(ref_trimmed, est_trimmed, min_beat_time=0.0)
            scores.update({col: float(beat_scores[key]) for key, col in BEAT_METRICS.items()})

        scores["downbeat_f"] = math.nan
        if ref_downbeats is not None and est_downbeats is not None:
            ref_db = _trim(_as_times(ref_downbeats, "reference downbeat times"), trim_seconds)
            est_db = _trim(_as_times(est_downbeats, "estimated downbeat times"), trim_seconds)
            if ref_db.size:
                scores["downbeat_f"] = float(mir_eval.beat.f_measure(ref_db, est_db))

    grid_scores = _grid_metrics(ref_beats, grid)
    if ref_bpm is None or not np.isfinite(ref_bpm):
        ref_bpm = tempo_from_beats(ref_beats)
    if est_bpm is None or not np.isfinite(est_bpm):
        est_bpm = grid_scores["grid_bpm"] if _is_grid(grid) else _float_or_nan((grid or {}).get("bpm"))
        if not np.isfinite(est_bpm):
            est_bpm = tempo_from_beats(est_beats)
    acc1, acc2 = tempo_accuracy(float(ref_bpm), float(est_bpm))
    scores.update(
        {
            "ref_bpm": float(ref_bpm),
            "est_bpm": float(est_bpm),
            "tempo_acc1": acc1,
            "tempo_acc2": acc2,
            **grid_scores,
            "n_ref_beats": float(ref_beats.size),
            "n_est_beats": float(est_beats.size),
        }
    )
    return scores


# ---------------------------------------------------------------------------
# reading predictions and references


def _shard_name(shard) -> str:
    """Shard column value -> file stem (``3`` or ``'003'`` -> ``'003'``)."""
    text = str(shard).strip()
    return f"{int(float(text)):03d}" if text.replace(".", "", 1).isdigit() else text


def _label_bpm(row: Mapping) -> float | None:
    bpm = _float_or_nan(row.get("bpm")) if "bpm" in row else math.nan
    return float(bpm) if np.isfinite(bpm) and bpm > 0 else None


def references_from_targets(
    target_paths: Iterable[str | Path], tracks: pd.DataFrame | None = None
) -> dict[str, Reference]:
    """Load reference beats from target stores (``/tracks/<id>/beat_times``, ``/downbeat_times``).

    When ``tracks`` (the index) is given, tracks whose ``has_downbeats`` is false get
    ``downbeat_times=None`` and a finite ``bpm`` column becomes the reference tempo.
    Without it, an empty ``downbeat_times`` array is read as "no downbeat annotation".
    """
    from beatgrid.data.store import open_store

    rows = {} if tracks is None else {str(r["track_id"]): r for r in tracks.to_dict("records")}
    references: dict[str, Reference] = {}
    for path in target_paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"target store not found: {path}")
        with open_store(path) as h5:
            group = h5.get("tracks")
            if group is None:
                continue
            for track_id, track in group.items():
                if "beat_times" not in track:
                    raise ValueError(f"{path}: /tracks/{track_id} has no 'beat_times'")
                beats = np.asarray(track["beat_times"][()], dtype=np.float64)
                downbeats = np.asarray(track["downbeat_times"][()], dtype=np.float64) if "downbeat_times" in track else None
                row = rows.get(track_id)
                if row is not None:
                    if not truthy(row.get("has_downbeats", True)):
                        downbeats = None
                elif downbeats is not None and downbeats.size == 0:
                    downbeats = None
                references[track_id] = Reference(beats, downbeats, _label_bpm(row) if row is not None else None)
    return references


def references_from_annotations(tracks: pd.DataFrame) -> dict[str, Reference]:
    """Load reference beats from the annotation files named in the index (any ``annotation_format``
    :func:`beatgrid.annotations.read_annotation` reads; label grids over the track's ``duration_s``)."""
    from beatgrid import annotations

    references: dict[str, Reference] = {}
    for row in tracks.to_dict("records"):
        fmt = str(row["annotation_format"])
        path = row["annotation_path"]
        bpm = _label_bpm(row)
        if fmt == annotations.LABEL_JSON_FORMAT:
            bpm = bpm or float(annotations.read_label_json(path).bpm)
        ann = annotations.read_annotation(path, fmt, float(row["duration_s"]))
        downbeats = np.asarray(ann.downbeat_times, dtype=np.float64) if truthy(row.get("has_downbeats")) else None
        references[str(row["track_id"])] = Reference(np.asarray(ann.beat_times, dtype=np.float64), downbeats, bpm)
    return references


# ---------------------------------------------------------------------------
# many tracks


def evaluate_predictions(
    tracks: pd.DataFrame,
    ref_loader: Mapping[str, Reference] | Callable[[str], Reference],
    methods: Mapping[str, str | Path],
    trim_seconds: float = 5.0,
) -> pd.DataFrame:
    """Score every method on every track of the index.

    Args:
        tracks: the index (``results/index/tracks.csv``): ``track_id, dataset, split``
            and ``has_downbeats`` are used.
        ref_loader: track_id -> :class:`Reference`, as a mapping (e.g. from
            :func:`references_from_targets`) or a callable.
        methods: method name (variants included, ``crnn_peaks@thr0.3``) -> folder with
            ``{track_id}.beats`` and optionally ``{track_id}.json``.
        trim_seconds: see :func:`evaluate_track`.

    Returns:
        one row per method x track: ``method, track_id, dataset, split`` + metrics.

    Raises:
        FileNotFoundError: a method has no ``.beats`` file for a track of the index.
        KeyError: the reference of a track is missing.
    """
    load = ref_loader.__getitem__ if isinstance(ref_loader, Mapping) else ref_loader
    records = []
    track_rows = tracks.to_dict("records")
    references: dict[str, Reference] = {}
    for row in track_rows:
        track_id = str(row["track_id"])
        try:
            references[track_id] = load(track_id)
        except KeyError:
            raise KeyError(f"no reference beats for track {track_id!r}") from None
    too_short = [tid for tid, ref in references.items() if not np.any(np.asarray(ref.beat_times) >= trim_seconds)]
    if too_short:
        warnings.warn(
            f"{len(too_short)} track(s) have no annotated beat after trim_seconds={trim_seconds:g} "
            f"(e.g. {', '.join(too_short[:3])}); their beat metrics are NaN. Lower evaluation.trim_seconds "
            "to score short clips.",
            stacklevel=2,
        )
    for method, pred_dir in methods.items():
        pred_dir = Path(pred_dir)
        for row in track_rows:
            track_id = str(row["track_id"])
            ref = references[track_id]
            est_beats, positions = read_prediction_beats(pred_dir / f"{track_id}.beats")
            grid = read_prediction_grid(pred_dir / f"{track_id}.json")
            est_downbeats = None if positions is None else est_beats[positions == 1]
            ref_downbeats = ref.downbeat_times if truthy(row.get("has_downbeats", True)) else None
            scores = evaluate_track(
                ref.beat_times,
                ref_downbeats,
                est_beats,
                est_downbeats,
                ref_bpm=ref.bpm,
                grid=grid,
                trim_seconds=trim_seconds,
            )
            records.append(
                {"method": method, "track_id": track_id, "dataset": row["dataset"], "split": row["split"], **scores}
            )
    columns = ["method", "track_id", "dataset", "split"]
    if not records:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame.from_records(records)


def variant_table(per_track: pd.DataFrame, metric: str = "beat_f", split: str = "val") -> pd.DataFrame:
    """Mean ``metric`` per method variant on ``split``: columns ``base_method, method, n_tracks, <metric>``."""
    rows = per_track[per_track["split"] == split]
    table = (
        rows.groupby("method", sort=False)[metric]
        .agg(["count", "mean"])
        .rename(columns={"count": "n_tracks", "mean": metric})
        .reset_index()
    )
    table.insert(0, "base_method", table["method"].map(base_method))
    return table


def select_best_variants(per_track: pd.DataFrame, metric: str = "beat_f", split: str = "val") -> dict[str, str]:
    """Choose one variant per base method: the highest mean ``metric`` on ``split``.

    Ties go to the variant listed first. A base method with a single variant maps to
    it without looking at scores. When no variant of a base method has a finite score
    on ``split`` (e.g. an empty validation split), the first variant is kept and a
    warning says so; the test split is never used for selection.
    """
    methods = list(dict.fromkeys(per_track["method"]))
    groups: dict[str, list[str]] = {}
    for method in methods:
        groups.setdefault(base_method(method), []).append(method)
    scores = variant_table(per_track, metric, split).set_index("method")[metric]
    chosen: dict[str, str] = {}
    for base, variants in groups.items():
        if len(variants) == 1:
            chosen[base] = variants[0]
            continue
        finite = [(scores.get(v, math.nan), -i, v) for i, v in enumerate(variants)]
        finite = [item for item in finite if np.isfinite(item[0])]
        if not finite:
            warnings.warn(
                f"no {split!r} scores for the variants of {base!r}; reporting {variants[0]!r} unselected",
                stacklevel=2,
            )
            chosen[base] = variants[0]
        else:
            chosen[base] = max(finite)[2]
    return chosen


def _split_key(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95, n_resamples: int = 4000,
            seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean of per-track scores (NaN dropped).

    The percentile interval of the means of ``n_resamples`` resamples of the tracks (drawn
    with replacement, seeded): how far the mean could move on other tracks of the same
    kind. For paired differences (adapted minus pretrained on the same tracks) pass the
    differences. ``(nan, nan)`` for fewer than two scores; with a handful of scores the
    interval is too narrow (it knows only the scores it was given). NumPy, not
    ``scipy.stats.bootstrap``: its seeding keyword changed between the SciPy versions the
    project allows.
    """
    scores = np.asarray(values, dtype=float)
    scores = scores[np.isfinite(scores)]
    if scores.size < 2:
        return math.nan, math.nan
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, scores.size, (int(n_resamples), scores.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _aggregate(rows: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {
        "n_tracks": int(len(rows)),
        "n_downbeat_tracks": int(rows["downbeat_f"].notna().sum()) if "downbeat_f" in rows else 0,
        "n_grid_tracks": int(rows["grid_bpm"].notna().sum()) if "grid_bpm" in rows else 0,
    }
    for col in _MEAN_COLUMNS:
        values = rows[col].to_numpy(dtype=np.float64) if col in rows else np.zeros(0)
        out[col] = float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else math.nan
    for col in _MEDIAN_COLUMNS:
        values = rows[col].to_numpy(dtype=np.float64) if col in rows else np.zeros(0)
        out[col] = float(np.median(values[np.isfinite(values)])) if np.isfinite(values).any() else math.nan
    return out


def summarize(
    per_track: pd.DataFrame,
    variants: Mapping[str, str] | None = None,
    metric: str = "beat_f",
) -> pd.DataFrame:
    """Aggregate per-track scores: one row per method x dataset x split, plus dataset ``all``.

    Args:
        per_track: output of :func:`evaluate_predictions`.
        variants: base method -> chosen variant; default :func:`select_best_variants`
            on the ``val`` split by ``metric``.
        metric: the selection metric when ``variants`` is not given.

    Returns:
        :data:`SUMMARY_COLUMNS`; means ignore NaN, ``grid_*_ms`` are medians over tracks.
        Splits are ordered test, val, train; methods in their order of appearance.
    """
    if variants is None:
        variants = select_best_variants(per_track, metric)
    records = []
    for base, variant in variants.items():
        rows = per_track[per_track["method"] == variant]
        for split in sorted(rows["split"].unique(), key=_split_key):
            split_rows = rows[rows["split"] == split]
            for dataset in list(dict.fromkeys(split_rows["dataset"])) + ["all"]:
                subset = split_rows if dataset == "all" else split_rows[split_rows["dataset"] == dataset]
                records.append(
                    {"method": base, "variant": variant, "dataset": dataset, "split": split, **_aggregate(subset)}
                )
    summary = pd.DataFrame.from_records(records, columns=SUMMARY_COLUMNS)
    if summary.empty:
        return summary
    summary["_split"] = summary["split"].map(lambda s: _split_key(s))
    summary["_method"] = summary["method"].map(list(variants).index)
    summary = summary.sort_values(["_split", "_method"], kind="stable").drop(columns=["_split", "_method"])
    return summary.reset_index(drop=True)


#: Columns of the printed table: summary column -> header.
MARKDOWN_COLUMNS = {
    "method": "method",
    "dataset": "dataset",
    "n_tracks": "n",
    "beat_f": "beat F",
    "beat_cmlt": "CMLt",
    "beat_amlt": "AMLt",
    "downbeat_f": "downbeat F",
    "tempo_acc1": "Acc1",
    "tempo_acc2": "Acc2",
    "grid_phase_error_ms": "grid err ms (median)",
}


def _format_cell(value, column: str) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        return f"{value:.1f}" if column.endswith("_ms") else f"{value:.3f}"
    return str(value)


def summary_markdown(summary: pd.DataFrame, columns: Mapping[str, str] | None = None) -> str:
    """Markdown tables of the summary, one per split (test first).

    Rows are grouped by dataset (``all`` last), methods in summary order within a group.
    Dataset ``all`` rows are left out when a split holds a single dataset (they repeat it).
    Variant names are shown beside the base method when they differ.
    """
    columns = dict(columns or MARKDOWN_COLUMNS)
    if summary.empty:
        return "_No evaluation results._\n"
    parts = []
    for split in sorted(summary["split"].unique(), key=_split_key):
        rows = summary[summary["split"] == split]
        if rows.loc[rows["dataset"] != "all", "dataset"].nunique() <= 1:
            rows = rows[rows["dataset"] != "all"]
        # methods of one dataset side by side, so each sits beside its peer; "all" last
        datasets = [d for d in dict.fromkeys(rows["dataset"]) if d != "all"] + ["all"]
        rows = rows.iloc[np.argsort(rows["dataset"].map(datasets.index).to_numpy(), kind="stable")]
        header = "| " + " | ".join(columns.values()) + " |"
        align = "|" + "|".join(":--" if c in ("method", "dataset") else "--:" for c in columns) + "|"
        lines = [f"### {split}", "", header, align]
        for record in rows.to_dict("records"):
            cells = []
            for col in columns:
                cell = _format_cell(record.get(col, math.nan), col)
                if col == "method" and record.get("variant") not in (None, record["method"]):
                    cell = f"{cell} ({record['variant']})"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def evaluate_run(
    tracks_csv: str | Path,
    prediction_dirs: Iterable[str | Path],
    target_paths: Iterable[str | Path] | None = None,
    *,
    trim_seconds: float = 5.0,
    per_track_csv: str | Path | None = None,
    summary_csv: str | Path | None = None,
    markdown_path: str | Path | None = None,
    dropped_from: Iterable[str | Path] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The evaluation stage in one call: score every prediction folder and write the tables.

    Args:
        tracks_csv: ``results/index/tracks.csv``.
        prediction_dirs: ``results/predictions/{method}`` folders; the folder name is the
            method (variant) name.
        target_paths: ``results/features/targets/{shard}.h5`` stores holding the reference
            beat times; ``None`` reads the annotation files named in the index instead.
        trim_seconds: see :func:`evaluate_track`.
        per_track_csv, summary_csv, markdown_path: where to write the per-track table,
            the summary and its Markdown rendering (each optional).
        dropped_from: more stores (the mel shards) whose jobs may have dropped tracks;
            tracks any of these or the target stores dropped are not scored.

    Returns:
        (per_track, summary, markdown).
    """
    from beatgrid.data.store import without_dropped
    from beatgrid.data.tracks import read_index

    tracks = read_index(tracks_csv)
    kept = without_dropped(tracks["track_id"], [*(target_paths or []), *dropped_from])
    tracks = tracks[tracks["track_id"].isin(kept)]
    references = (
        references_from_targets(target_paths, tracks) if target_paths is not None else references_from_annotations(tracks)
    )
    methods = {Path(d).name: Path(d) for d in prediction_dirs}
    per_track = evaluate_predictions(tracks, references, methods, trim_seconds)
    summary = summarize(per_track)
    markdown = summary_markdown(summary)
    for table, path in ((per_track, per_track_csv), (summary, summary_csv)):
        if path is not None:
            atomic_write(path, partial(table.to_csv, index=False, float_format="%.6g"))
    if markdown_path is not None:
        atomic_write_text(markdown_path, markdown)
    return per_track, summary, markdown
