"""The evaluation report: one self-contained HTML page plus the PNG figures it embeds.

``results/report/index.html`` opens from disk with no network: CSS is inline and every
figure is a base64 PNG. The same figures are written under ``figures/`` so that the
Snakemake rule can declare them with ``report()`` for ``snakemake --report``.

Sections: summary tables (test split first, then val and train), per-method beat and
downbeat F-measure distributions, estimated vs annotated tempo, grid confidence vs phase
error and the flagged tracks, per-track panels (mel, activations, annotated and
predicted beats) for the best and worst tracks, training curves, the variant selection,
and the config, package versions and git revision that produced it.

Figures are drawn on matplotlib's Agg canvas without pyplot: no display is needed and
importing this module leaves the caller's matplotlib backend alone.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .provenance import git_revision, package_versions, plain

from beatgrid.evaluation import (
    MARKDOWN_COLUMNS,
    SPLIT_ORDER,
    VARIANT_SEPARATOR,
    read_prediction_beats,
    variant_table,
)

__all__ = [
    "FIGURE_NAMES",
    "package_versions",
    "git_revision",
    "select_examples",
    "collect_examples",
    "flag_tracks",
    "write_report_figures",
    "build_report",
    "write_report",
]

#: Figures every report has (file stem -> title); per-track panels add ``track_<n>_<label>_<id>``.
FIGURE_NAMES = {
    "f_measure_distribution": "Beat and downbeat F-measure per track",
    "tempo_scatter": "Estimated vs annotated tempo",
    "grid_confidence": "Beatgrid confidence vs phase error",
    "training_curves": "Training curves",
}

#: Grid error (ms) above which a beatgrid is off the music for DJ use.
DJ_TOLERANCE_MS = 25.0

_DPI = 110
_COLORS = matplotlib.colormaps["tab10"].colors
_LOG_TICKS_MS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_LOWER_IS_BETTER = {"grid_phase_error_ms", "grid_max_error_ms"}
_METRIC_HELP = {
    "n_tracks": "number of tracks",
    "beat_f": "beat F-measure, ±70 ms window (mir_eval)",
    "beat_cemgil": "Cemgil accuracy, Gaussian σ = 40 ms",
    "beat_goto": "Goto accuracy (1 if the track is tracked correctly)",
    "beat_pscore": "McKinney P-score",
    "beat_cmlc": "correct metrical level, longest continuous segment",
    "beat_cmlt": "correct metrical level, total",
    "beat_amlc": "any metrical level (×2, ×½, off-beat), continuous",
    "beat_amlt": "any metrical level (×2, ×½, off-beat), total",
    "beat_infogain": "information gain (bits, normalised)",
    "downbeat_f": "downbeat F-measure, ±70 ms; tracks without downbeat annotation excluded",
    "tempo_acc1": "fraction of tracks with tempo within 4 %",
    "tempo_acc2": "as Acc1, also accepting ×2, ×3, ×½, ×⅓",
    "grid_confidence": "mean beatgrid confidence",
    "grid_phase_error_ms": "median over tracks of the median |annotated beat − nearest grid line|",
    "grid_max_error_ms": "median over tracks of the largest |annotated beat − nearest grid line|",
    "grid_phase_bias_ms": "median signed grid − annotation offset (positive: grid late)",
    "n_downbeat_tracks": "tracks with downbeat annotation and estimate",
    "n_grid_tracks": "tracks with a beatgrid",
}
_FLAGGED_HEADERS = {
    "track_id": "track", "dataset": "data", "split": "split", "grid_confidence": "confidence",
    "est_bpm": "est. BPM", "ref_bpm": "ann. BPM",
    "tempo_acc1": "Acc1", "grid_phase_error_ms": "grid err ms", "beat_f": "beat F",
}  # fmt: skip
_FULL_COLUMNS = [
    "n_tracks", "beat_f", "beat_cemgil", "beat_goto", "beat_pscore", "beat_cmlc", "beat_cmlt",
    "beat_amlc", "beat_amlt", "beat_infogain", "n_downbeat_tracks", "downbeat_f", "tempo_acc1",
    "tempo_acc2", "n_grid_tracks", "grid_confidence", "grid_phase_error_ms", "grid_max_error_ms",
    "grid_phase_bias_ms",
]  # fmt: skip


# ---------------------------------------------------------------------------
# provenance


_package_versions = package_versions  # build_report's keyword argument shadows the name


# ---------------------------------------------------------------------------
# choosing and loading the per-track examples


def _report_split(per_track: pd.DataFrame) -> str | None:
    """The split the report's plots show: the first of test, val, train that has rows."""
    present = set(per_track["split"]) if "split" in per_track else set()
    for split in SPLIT_ORDER:
        if split in present:
            return split
    return sorted(present)[0] if present else None


def _chosen_variants(per_track: pd.DataFrame, summary: pd.DataFrame | None) -> dict[str, str]:
    """Base method -> the variant the summary reports (every method when no summary)."""
    if summary is not None and not summary.empty and "variant" in summary:
        pairs = summary[["method", "variant"]].drop_duplicates()
        return dict(zip(pairs["method"], pairs["variant"]))
    return {m: m for m in dict.fromkeys(per_track.get("method", []))}


def select_examples(
    per_track: pd.DataFrame,
    method: str,
    n_best: int = 2,
    n_worst: int = 2,
    metric: str = "beat_f",
    split: str | None = None,
) -> list[dict[str, Any]]:
    """Pick the best and worst tracks of ``method`` by ``metric`` for the per-track panels.

    Args:
        per_track: per-track scores.
        method: method (variant) name whose scores rank the tracks.
        n_best, n_worst: how many of each; a track is never picked twice.
        metric: ranking metric (higher = better).
        split: split to pick from; default the first of test, val, train present.

    Returns:
        ``[{"track_id", "label" ("best"/"worst"), "method", "score"}]``, worst first.
    """
    split = split or _report_split(per_track)
    rows = per_track[(per_track["method"] == method) & (per_track["split"] == split)]
    rows = rows[np.isfinite(rows[metric].to_numpy(dtype=float))].sort_values([metric, "track_id"])
    worst = rows.head(n_worst)
    best = rows[~rows["track_id"].isin(worst["track_id"])].tail(n_best).iloc[::-1]
    picked = [("worst", r) for r in worst.to_dict("records")] + [("best", r) for r in best.to_dict("records")]
    return [
        {"track_id": r["track_id"], "label": label, "method": method, "score": float(r[metric])} for label, r in picked
    ]


def _store_path(store: str | Path | Mapping[str, str | Path] | None, shard) -> Path | None:
    if store is None:
        return None
    text = str(shard).strip()
    name = f"{int(float(text)):03d}" if text.replace(".", "", 1).isdigit() else text
    if isinstance(store, Mapping):
        path = store.get(name)
        return Path(path) if path is not None else None
    return Path(store) / f"{name}.h5"


def _read_h5(path: Path | None, track_id: str, name: str) -> tuple[np.ndarray | None, float | None]:
    """(array, fps attribute) of ``/tracks/<id>/<name>`` or (None, None) when absent."""
    if path is None or not path.is_file():
        return None, None
    from beatgrid.data.store import open_store

    with open_store(path) as h5:
        key = f"tracks/{track_id}/{name}"
        if key not in h5:
            return None, None
        fps = h5.attrs.get("fps")
        return np.asarray(h5[key][()], dtype=np.float32), (float(fps) if fps is not None else None)


def collect_examples(
    selected: Sequence[Mapping[str, Any]],
    tracks: pd.DataFrame,
    references: Mapping[str, Any],
    prediction_dirs: Mapping[str, str | Path],
    mel_store: str | Path | Mapping[str, str | Path] | None = None,
    activation_store: str | Path | Mapping[str, str | Path] | None = None,
    fps: float = 50.0,
) -> list[dict[str, Any]]:
    """Load what the per-track panels show for the tracks chosen by :func:`select_examples`.

    Args:
        selected: ``[{"track_id", "label", ...}]``.
        tracks: the index (for ``shard``, ``dataset``, ``duration_s``).
        references: track_id -> :class:`beatgrid.evaluation.Reference`.
        prediction_dirs: method name (as shown in the panel) -> prediction folder.
        mel_store, activation_store: folder of ``{shard}.h5`` stores, or shard -> path;
            ``None`` leaves the panel row out.
        fps: frame rate when a store has no ``fps`` attribute.

    Returns:
        example dicts for :func:`build_report`.
    """
    index = tracks.set_index(tracks["track_id"].astype(str))
    examples = []
    for item in selected:
        track_id = str(item["track_id"])
        row = index.loc[track_id]
        mel, mel_fps = _read_h5(_store_path(mel_store, row["shard"]), track_id, "mel")
        activations, act_fps = _read_h5(_store_path(activation_store, row["shard"]), track_id, "activations")
        predictions = {}
        for method, pred_dir in prediction_dirs.items():
            path = Path(pred_dir) / f"{track_id}.beats"
            if path.is_file():
                predictions[method] = read_prediction_beats(path)
        ref = references[track_id]
        examples.append(
            {
                **dict(item),
                "track_id": track_id,
                "dataset": row.get("dataset"),
                "duration_s": float(row["duration_s"]) if "duration_s" in row else None,
                "mel": mel,
                "activations": activations,
                "fps": mel_fps or act_fps or fps,
                "ref_beats": ref.beat_times,
                "ref_downbeats": ref.downbeat_times,
                "predictions": predictions,
            }
        )
    return examples


def flag_tracks(per_track: pd.DataFrame, confidence_threshold: float = 0.5) -> pd.DataFrame:
    """Beatgrid predictions whose confidence is below ``confidence_threshold``, least confident first."""
    if "grid_confidence" not in per_track:
        return per_track.iloc[0:0]
    flagged = per_track[per_track["grid_confidence"] < confidence_threshold]
    columns = [
        c
        for c in (
            "method", "track_id", "dataset", "split", "grid_confidence", "est_bpm", "ref_bpm",
            "tempo_acc1", "grid_phase_error_ms", "beat_f",
        )
        if c in per_track
    ]  # fmt: skip
    return flagged.sort_values(["grid_confidence", "method", "track_id"])[columns].reset_index(drop=True)


# ---------------------------------------------------------------------------
# figures


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot: an Agg figure that no GUI backend or global state sees."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.45")
    ax.set_xticks([])
    ax.set_yticks([])


def _plot_rows(per_track: pd.DataFrame, summary: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str], str | None]:
    """Rows of the chosen variants on the report split, labelled by base method; method order."""
    if per_track.empty:
        return per_track, [], None
    chosen = _chosen_variants(per_track, summary)
    split = _report_split(per_track)
    rows = per_track[(per_track["split"] == split) & per_track["method"].isin(chosen.values())].copy()
    to_base = {v: b for b, v in chosen.items()}
    rows["label"] = rows["method"].map(to_base)
    return rows, [b for b, v in chosen.items() if v in set(rows["method"])], split


def figure_f_distribution(per_track: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Box + strip plot of per-track beat F and downbeat F per method on the report split."""
    rows, methods, split = _plot_rows(per_track, summary)
    fig, axes = _subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    datasets = list(dict.fromkeys(rows["dataset"])) if len(rows) else []
    rng = np.random.default_rng(0)
    for ax, metric, title in zip(axes, ("beat_f", "downbeat_f"), ("beat F-measure", "downbeat F-measure")):
        values = [rows.loc[rows["label"] == m, metric].dropna().to_numpy(float) for m in methods]
        if not any(len(v) for v in values):
            _placeholder(ax, f"no {title} scores")
            ax.set_title(title)
            continue
        positions = np.arange(len(methods))
        ax.boxplot(
            [v if len(v) else [np.nan] for v in values],
            positions=positions,
            widths=0.55,
            showfliers=False,
            medianprops={"color": "black"},
            boxprops={"color": "0.35"},
            whiskerprops={"color": "0.35"},
            capprops={"color": "0.35"},
        )
        for i, method in enumerate(methods):
            sub = rows[(rows["label"] == method) & rows[metric].notna()]
            for d, dataset in enumerate(datasets):
                vals = sub.loc[sub["dataset"] == dataset, metric].to_numpy(float)
                jitter = rng.uniform(-0.18, 0.18, size=len(vals))
                ax.scatter(
                    i + jitter, vals, s=12, alpha=0.7, color=_COLORS[d % 10], zorder=3,
                    label=dataset if i == 0 or not ax.get_legend_handles_labels()[1].count(dataset) else None,
                )  # fmt: skip
        ax.set_xticks(positions, methods, rotation=20, ha="right")
        ax.set_title(f"{title} ({split})")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("per-track score")
    handles, labels = axes[0].get_legend_handles_labels()
    if len(datasets) > 1 and handles:
        unique = dict(zip(labels, handles))
        axes[1].legend(unique.values(), unique.keys(), title="dataset", fontsize=8, loc="lower right")
    return fig


def figure_tempo_scatter(per_track: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Estimated vs annotated tempo (log-log) with the ×1, ×2, ×½, ×3, ×⅓ lines."""
    rows, methods, split = _plot_rows(per_track, summary)
    fig, ax = _subplots(figsize=(5.2, 4.4))
    if not len(rows) or not np.isfinite(rows[["ref_bpm", "est_bpm"]].to_numpy(float)).any():
        _placeholder(ax, "no tempo estimates")
        return fig
    finite = rows[np.isfinite(rows["ref_bpm"]) & np.isfinite(rows["est_bpm"]) & (rows["est_bpm"] > 0)]
    lo = float(min(finite["ref_bpm"].min(), finite["est_bpm"].min()) * 0.8)
    hi = float(max(finite["ref_bpm"].max(), finite["est_bpm"].max()) * 1.25)
    x = np.array([lo, hi])
    lines = ((1, "-", "×1"), (2, "--", "×2"), (0.5, "--", "×½"), (3, ":", "×3"), (1 / 3, ":", "×⅓"))
    for factor, style, text in lines:
        ax.plot(x, factor * x, style, color="0.6", lw=0.9, zorder=1)
        x_text = hi / 1.08 if factor <= 1 else hi / factor / 1.08
        if lo <= x_text * factor <= hi:
            ax.text(x_text, x_text * factor, text, fontsize=8, color="0.4", ha="right", va="bottom")
    markers = "o^sDvP*X"
    for i, method in enumerate(methods):
        sub = finite[finite["label"] == method]
        ax.scatter(
            sub["ref_bpm"], sub["est_bpm"], s=20, alpha=0.75, marker=markers[i % len(markers)],
            color=_COLORS[i % 10], label=method, zorder=3,
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in (20, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600) if lo <= t <= hi]
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%d"))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("annotated tempo (BPM)")
    ax.set_ylabel("estimated tempo (BPM)")
    ax.set_title(f"tempo ({split})")
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def figure_grid_confidence(
    per_track: pd.DataFrame, summary: pd.DataFrame | None = None, confidence_threshold: float = 0.5
) -> Figure:
    """Grid confidence vs phase error per beatgrid track: is the confidence honest?"""
    rows, methods, split = _plot_rows(per_track, summary)
    fig, ax = _subplots(figsize=(5.2, 3.6))
    if not len(rows) or "grid_phase_error_ms" not in rows or not rows["grid_phase_error_ms"].notna().any():
        _placeholder(ax, "no beatgrid predictions")
        return fig
    grid_rows = rows[rows["grid_phase_error_ms"].notna()]
    for i, method in enumerate(methods):
        sub = grid_rows[grid_rows["label"] == method]
        if not len(sub):
            continue
        ok = sub["tempo_acc1"] > 0
        ax.scatter(sub.loc[ok, "grid_confidence"], sub.loc[ok, "grid_phase_error_ms"].clip(lower=0.1),
                   s=20, color=_COLORS[i % 10], label=f"{method}", alpha=0.8)  # fmt: skip
        ax.scatter(sub.loc[~ok, "grid_confidence"], sub.loc[~ok, "grid_phase_error_ms"].clip(lower=0.1),
                   s=26, marker="x", color=_COLORS[i % 10], label=f"{method}, wrong tempo", alpha=0.9)  # fmt: skip
    ax.axhline(DJ_TOLERANCE_MS, color="0.5", ls="--", lw=0.9)
    ax.axvline(confidence_threshold, color="0.5", ls=":", lw=0.9)
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([t for t in _LOG_TICKS_MS if low <= t <= high]))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("grid confidence")
    ax.set_ylabel("grid phase error (ms, median per track)")
    ax.set_title(f"beatgrid confidence vs error ({split})")
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=7, loc="best")
    return fig


def figure_training_curves(history_csvs: Mapping[str, str | Path | None]) -> Figure:
    """Per model: losses (top) and validation metrics with the learning rate (bottom).

    Reads ``history.csv`` as :mod:`beatgrid.training` writes it: ``epoch``, columns with
    ``loss`` in their name, ``val_*`` metrics and ``lr``; other columns (timings) are not
    plotted. The kept epoch (best ``val_score``, or ``val_beat_f`` in older histories) is marked.
    """
    names = list(history_csvs) or ["model"]
    fig, axes = _subplots(2, len(names), figsize=(4.8 * len(names), 5.2), squeeze=False)
    for j, name in enumerate(names):
        path = history_csvs.get(name)
        top, bottom = axes[0, j], axes[1, j]
        if path is None or not Path(path).is_file():
            _placeholder(top, f"{name}: no history.csv")
            _placeholder(bottom, "")
            continue
        history = pd.read_csv(path)
        x = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
        numeric = [c for c in history.columns if pd.api.types.is_numeric_dtype(history[c])]
        losses = [c for c in numeric if "loss" in c]
        others = [c for c in numeric if c.startswith("val_") and c not in losses]
        for k, col in enumerate(losses):
            top.plot(x, history[col], marker="o", ms=2.5, lw=1.2, color=_COLORS[k % 10], label=col)
        top.set_title(f"{name}: loss")
        top.grid(alpha=0.3)
        if losses:
            top.legend(fontsize=8)
        for k, col in enumerate(others):
            bottom.plot(x, history[col], marker="o", ms=2.5, lw=1.2, color=_COLORS[(k + 2) % 10], label=col)
        score = next((c for c in ("val_score", "val_beat_f") if c in history and history[c].notna().any()), None)
        if score is not None:
            best = int(np.nanargmax(history[score].to_numpy(float)))
            for ax in (top, bottom):
                ax.axvline(np.asarray(x)[best], color="0.5", ls=":", lw=1.0)
        bottom.set_title(f"{name}: validation")
        bottom.set_xlabel("epoch")
        bottom.grid(alpha=0.3)
        if others:
            bottom.legend(fontsize=8)
        lr_col = next((c for c in ("lr", "learning_rate") if c in history), None)
        if lr_col is not None:
            twin = bottom.twinx()
            twin.plot(x, history[lr_col], color="0.6", lw=0.8, ls="--")
            twin.set_ylabel("learning rate", color="0.5", fontsize=8)
            twin.tick_params(labelsize=7, colors="0.5")
    return fig


def _split_prediction(pred) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(pred, tuple):
        times, positions = pred
        return np.asarray(times, dtype=float), (None if positions is None else np.asarray(positions))
    return np.asarray(pred, dtype=float), None


def figure_track(example: Mapping[str, Any], window_s: float | None = 20.0, trim_seconds: float = 0.0) -> Figure:
    """One track: log-mel, activations, and annotated vs predicted beats over the first ``window_s`` seconds.

    Annotated beats are grey lines across the mel and activation rows; in the bottom
    row each method's predicted beats are ticks (tall ticks: downbeats). The region
    before ``trim_seconds``, which the beat metrics ignore, is shaded.
    """
    fps = float(example.get("fps") or 50.0)
    mel, activations = example.get("mel"), example.get("activations")
    predictions = dict(example.get("predictions") or {})
    ref_beats = np.asarray(example.get("ref_beats", []), dtype=float)
    ref_downbeats = example.get("ref_downbeats")
    lengths = [len(a) / fps for a in (mel, activations) if a is not None]
    duration = float(example.get("duration_s") or (max(lengths) if lengths else (ref_beats.max() if ref_beats.size else 1)))
    end = min(duration, window_s) if window_s else duration
    rows = [r for r, a in (("mel", mel), ("act", activations)) if a is not None] + ["beats"]
    heights = {"mel": 2.2, "act": 1.3, "beats": 0.35 * (len(predictions) + 1) + 0.4}
    fig, axes = _subplots(
        len(rows), 1, figsize=(10, sum(heights[r] for r in rows) + 0.6), sharex=True,
        gridspec_kw={"height_ratios": [heights[r] for r in rows]}, squeeze=False,
    )  # fmt: skip
    axes = dict(zip(rows, axes[:, 0]))
    visible_ref = ref_beats[ref_beats <= end]
    if "mel" in axes:
        ax = axes["mel"]
        n_frames = min(len(mel), int(math.ceil(end * fps)) + 1)
        ax.imshow(np.asarray(mel[:n_frames], dtype=np.float32).T, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, n_frames / fps, 0, mel.shape[1]), interpolation="nearest")  # fmt: skip
        ax.vlines(visible_ref, 0, mel.shape[1], color="white", lw=0.6, alpha=0.55)
        ax.set_ylabel("mel band")
    if "act" in axes:
        ax = axes["act"]
        n_frames = min(len(activations), int(math.ceil(end * fps)) + 1)
        t = np.arange(n_frames) / fps
        ax.vlines(visible_ref, 0, 1.05, color="0.75", lw=0.6)
        ax.plot(t, activations[:n_frames, 0], lw=1.0, color=_COLORS[0], label="beat")
        if activations.shape[1] > 1:
            ax.plot(t, activations[:n_frames, 1], lw=1.0, color=_COLORS[1], label="downbeat")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("activation")
        ax.legend(fontsize=7, loc="upper right", ncol=2)
    ax = axes["beats"]
    labels = ["annotation"] + list(predictions)
    ax.eventplot([visible_ref], lineoffsets=[0], linelengths=0.6, colors="black", linewidths=0.9)
    if ref_downbeats is not None and len(ref_downbeats):
        db = np.asarray(ref_downbeats, dtype=float)
        ax.eventplot([db[db <= end]], lineoffsets=[0], linelengths=0.95, colors="black", linewidths=1.8)
    for i, (method, pred) in enumerate(predictions.items(), start=1):
        times, positions = _split_prediction(pred)
        keep = times <= end
        color = _COLORS[(i - 1) % 10]
        ax.eventplot([times[keep]], lineoffsets=[i], linelengths=0.6, colors=[color], linewidths=0.9)
        if positions is not None:
            down = times[keep & (positions == 1)]
            ax.eventplot([down], lineoffsets=[i], linelengths=0.95, colors=[color], linewidths=1.8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.4, -0.6)
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, end)
    if trim_seconds > 0:
        for a in axes.values():
            a.axvspan(0, min(trim_seconds, end), color="0.5", alpha=0.15, lw=0)
    title = f"{example.get('track_id')}"
    if example.get("dataset"):
        title += f"  ·  {example['dataset']}"
    if example.get("label"):
        title = f"{example['label']}: " + title
    if example.get("score") is not None and example.get("method"):
        title += f"  ·  {example['method']} beat F = {example['score']:.3f}"
    if end < duration:
        title += f"  ·  first {end:.0f} s of {duration:.0f} s"
    axes[rows[0]].set_title(title, fontsize=10, loc="left")
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


def _safe_stem(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def write_report_figures(
    out_dir: str | Path,
    *,
    per_track: pd.DataFrame,
    summary: pd.DataFrame | None,
    history_csvs: Mapping[str, str | Path | None],
    examples: Sequence[Mapping[str, Any]] = (),
    confidence_threshold: float = 0.5,
    trim_seconds: float = 0.0,
    window_s: float | None = 20.0,
) -> dict[str, Path]:
    """Write the report's PNG figures into ``out_dir`` (the ``figures/`` folder).

    Returns:
        figure stem -> path: the :data:`FIGURE_NAMES` always, plus one
        ``track_<n>_<label>_<track_id>`` panel per example.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "f_measure_distribution": figure_f_distribution(per_track, summary),
        "tempo_scatter": figure_tempo_scatter(per_track, summary),
        "grid_confidence": figure_grid_confidence(per_track, summary, confidence_threshold),
        "training_curves": figure_training_curves(history_csvs),
    }
    paths = {name: _save(fig, out_dir / f"{name}.png") for name, fig in figures.items()}
    for n, example in enumerate(examples):
        stem = _safe_stem(f"track_{n:02d}_{example.get('label', 'example')}_{example['track_id']}")
        paths[stem] = _save(figure_track(example, window_s=window_s, trim_seconds=trim_seconds), out_dir / f"{stem}.png")
    return paths


# ---------------------------------------------------------------------------
# HTML

_CSS = """
:root { --fg:#1d2329; --muted:#5f6b76; --line:#dde2e7; --accent:#1f6fb2; --bg:#ffffff; --soft:#f5f7f9; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--fg); background:var(--bg); }
main { max-width:1220px; margin:0 auto; padding:18px 28px 60px; }
header { border-bottom:2px solid var(--fg); padding-bottom:8px; margin-bottom:6px; }
h1 { font-size:22px; margin:0 0 2px; }
h2 { font-size:17px; margin:28px 0 8px; padding-bottom:3px; border-bottom:1px solid var(--line); }
h3 { font-size:14px; margin:16px 0 6px; }
.meta { color:var(--muted); font-size:12.5px; margin:0; }
.meta code { font-size:12px; }
nav { font-size:12.5px; margin:6px 0 4px; }
nav a { color:var(--accent); text-decoration:none; margin-right:14px; }
nav a:hover { text-decoration:underline; }
table { border-collapse:collapse; font-size:12.5px; margin:4px 0 8px; font-variant-numeric:tabular-nums; }
th, td { padding:3px 9px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { text-align:right; font-weight:600; background:var(--soft); border-bottom:1px solid #b9c2ca; cursor:help; }
th.txt, td.txt { text-align:left; }
td { text-align:right; }
tr.group-start td { border-top:1px solid #b9c2ca; }
tr.all td { background:#fafbfc; font-style:italic; }
td.best { font-weight:700; }
td.na { color:#9aa4ad; }
.variant { color:var(--muted); font-size:11px; }
.figrow { display:flex; flex-wrap:wrap; gap:14px; align-items:flex-start; }
figure { margin:6px 0; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:3px; }
figcaption { color:var(--muted); font-size:12px; max-width:680px; }
.note { color:var(--muted); font-size:12.5px; max-width:900px; }
details { margin:4px 0 10px; }
summary { cursor:pointer; color:var(--accent); font-size:13px; }
pre { background:var(--soft); border:1px solid var(--line); padding:10px; font-size:12px; overflow:auto; max-height:460px; }
.cols { display:flex; gap:24px; flex-wrap:wrap; align-items:flex-start; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, column: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        if column.endswith("_ms") or column.endswith("bpm"):
            return f"{value:.1f}"
        if column.startswith("n_"):
            return f"{value:.0f}"
        return f"{value:.3f}"
    return str(value)


def _html_table(
    df: pd.DataFrame,
    columns: Sequence[str],
    headers: Mapping[str, str] | None = None,
    text_columns: Iterable[str] = ("method", "dataset", "split", "track_id", "variant"),
    best_within: str | None = None,
    group_by: str | None = None,
) -> str:
    """An HTML table; numbers right-aligned, the best value per column (within ``best_within`` groups) in bold."""
    headers = dict(headers or {})
    text_columns = set(text_columns)
    best: dict[tuple[Any, str], float] = {}
    if best_within is not None and len(df):
        for key, group in df.groupby(best_within, sort=False):
            if len(group) < 2:
                continue
            for col in columns:
                if col in text_columns or col.startswith("n_") or col not in group:
                    continue
                vals = pd.to_numeric(group[col], errors="coerce").to_numpy(float)
                if np.isfinite(vals).sum() < 2:
                    continue
                if col == "grid_phase_bias_ms" or np.nanmin(vals) == np.nanmax(vals):
                    continue  # no sign to prefer, or nothing to single out
                best[(key, col)] = np.nanmin(vals) if col in _LOWER_IS_BETTER else np.nanmax(vals)
    head = "".join(
        f'<th class="{"txt" if c in text_columns else "num"}" title="{_esc(_METRIC_HELP.get(c, c))}">'
        f"{_esc(headers.get(c, c))}</th>"
        for c in columns
    )
    body = []
    previous_group = None
    for record in df.to_dict("records"):
        classes = []
        if group_by is not None:
            if previous_group is not None and record[group_by] != previous_group:
                classes.append("group-start")
            previous_group = record[group_by]
        if record.get("dataset") == "all":
            classes.append("all")
        cells = []
        for c in columns:
            value = record.get(c)
            cls = ["txt"] if c in text_columns else []
            text = _esc(_fmt(value, c))
            if text == "–":
                cls.append("na")
            key = (record.get(best_within), c) if best_within else None
            if key in best and isinstance(value, (float, int, np.floating, np.integer)) and np.isclose(value, best[key]):
                cls.append("best")
            variant = record.get("variant")
            if c == "method" and isinstance(variant, str) and variant != value and VARIANT_SEPARATOR in variant:
                suffix = variant.split(VARIANT_SEPARATOR, 1)[1]
                text += f' <span class="variant">@{_esc(suffix)}</span>'
            cells.append(f'<td class="{" ".join(cls)}">{text}</td>' if cls else f"<td>{text}</td>")
        row_open = f'<tr class="{" ".join(classes)}">' if classes else "<tr>"
        body.append(row_open + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(path: Path, alt: str, caption: str | None = None, width: int | None = None) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    style = f' style="max-width:{width}px"' if width else ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure{style}><img alt="{_esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _summary_tables(summary: pd.DataFrame) -> dict[str, str]:
    """Split -> HTML (key metrics table + all metrics in a <details>)."""
    key_columns = [c for c in MARKDOWN_COLUMNS if c in summary.columns] + ["grid_confidence"]
    headers = {**MARKDOWN_COLUMNS, "grid_phase_error_ms": "grid err ms", "grid_confidence": "grid conf."}
    full_headers = {c: c.replace("beat_", "").replace("grid_", "grid ").replace("_", " ") for c in _FULL_COLUMNS}
    out = {}
    if summary.empty:
        return out
    order = {split: i for i, split in enumerate(SPLIT_ORDER)}
    for split in sorted(summary["split"].unique(), key=lambda s: (order.get(s, 99), s)):
        rows = summary[summary["split"] == split]
        if rows.loc[rows["dataset"] != "all", "dataset"].nunique() <= 1:
            rows = rows[rows["dataset"] != "all"]
        # Group by dataset so that methods sit beside each other (and beside the librosa peer);
        # the all-datasets rows first, so the first screen shows the overall comparison.
        datasets = ["all"] + list(dict.fromkeys(d for d in rows["dataset"] if d != "all"))
        rows = rows.assign(_d=rows["dataset"].map({d: i for i, d in enumerate(datasets)})).sort_values("_d", kind="stable")
        rows = rows.drop(columns="_d")
        key = _html_table(rows, ["dataset", *[c for c in key_columns if c != "dataset"]], headers,
                          best_within="dataset", group_by="dataset")  # fmt: skip
        full_cols = ["dataset", "method"] + [c for c in _FULL_COLUMNS if c in rows]
        full = _html_table(rows, full_cols, full_headers, best_within="dataset", group_by="dataset")
        out[split] = key + f"<details><summary>all metrics ({split})</summary>{full}</details>"
    return out


def _split_membership(tracks: pd.DataFrame) -> str:
    """The split of every track (provenance: which tracks each figure was measured on)."""
    if "split" not in tracks or tracks.empty:
        return ""
    order = {split: i for i, split in enumerate(SPLIT_ORDER)}
    rows = []
    for split in sorted(tracks["split"].unique(), key=lambda s: (order.get(s, 99), s)):
        ids = sorted(tracks.loc[tracks["split"] == split, "track_id"].astype(str))
        rows.append(f"<p><b>{_esc(split)}</b> ({len(ids)}): <code>{_esc(', '.join(ids))}</code></p>")
    return (
        "<details id='splits'><summary>Split of every track</summary><p class='note'>A track's split is a "
        "hash of its track_id and split.seed, so it stays the same when tracks are added or removed.</p>"
        + "".join(rows) + "</details>"
    )


def left_out_inputs(rejected_csv: str | Path | None, dropped_from: Iterable[str | Path] = ()) -> pd.DataFrame:
    """Every input that is in no result: ``stage`` (``index`` or ``shard job``), ``file``
    (or track id) and ``reason``, from ``rejected.csv`` and the stores' dropped tracks."""
    from beatgrid.data.store import read_dropped

    rows = []
    if rejected_csv is not None and Path(rejected_csv).is_file():
        rejected = pd.read_csv(rejected_csv, dtype=str, keep_default_na=False)
        for row in rejected.to_dict("records"):
            rows.append({"stage": "index", "file": row.get("audio_path") or row.get("annotation_path", ""),
                         "reason": row.get("reason", "")})
    for track_id, reason in read_dropped(list(dropped_from)).items():
        rows.append({"stage": "shard job", "file": track_id, "reason": reason})
    return pd.DataFrame(rows, columns=["stage", "file", "reason"])


def build_report(
    out_dir: str | Path,
    *,
    per_track: pd.DataFrame,
    summary: pd.DataFrame,
    tracks: pd.DataFrame,
    config: Mapping[str, Any],
    history_csvs: Mapping[str, str | Path | None],
    examples: Sequence[Mapping[str, Any]] = (),
    package_versions: Mapping[str, str] | None = None,
    git_revision: str = "unknown",
    confidence_threshold: float = 0.5,
    title: str = "beatgrid evaluation report",
    left_out: pd.DataFrame | None = None,
) -> Path:
    """Write ``out_dir/index.html`` (self-contained) and its figures under ``out_dir/figures/``.

    Args:
        out_dir: report folder (``results/report``).
        per_track: :func:`beatgrid.evaluation.evaluate_predictions` output.
        summary: :func:`beatgrid.evaluation.summarize` output.
        tracks: the index (``results/index/tracks.csv``).
        config: the workflow config (shown as YAML; ``evaluation.trim_seconds`` is read).
        history_csvs: model name (``crnn``, ``ltm``) -> ``history.csv`` path (or None).
        left_out: inputs not in the results (:func:`left_out_inputs`): ``stage, file, reason``.
        examples: per-track panels, e.g. from :func:`collect_examples`: dicts with
            ``track_id``, ``mel`` [T, n_mels] or None, ``activations`` [T, 2] or None,
            ``fps``, ``ref_beats`` (s), optional ``ref_downbeats``, ``predictions``
            {method: beat_times or (beat_times, positions)}, optional ``label``,
            ``method``, ``score``, ``dataset``, ``duration_s``.
        package_versions: name -> version (default :func:`package_versions`).
        git_revision: revision of the code that produced the results.
        confidence_threshold: beatgrids below this confidence are flagged.

    Returns:
        path of ``index.html``.
    """
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    trim_seconds = float((config.get("evaluation") or {}).get("trim_seconds", 5.0))
    versions = dict(package_versions) if package_versions is not None else _package_versions()
    figures = write_report_figures(
        fig_dir,
        per_track=per_track,
        summary=summary,
        history_csvs=history_csvs,
        examples=examples,
        confidence_threshold=confidence_threshold,
        trim_seconds=trim_seconds,
    )
    flagged = flag_tracks(per_track, confidence_threshold)
    flagged.to_csv(out_dir / "flagged_tracks.csv", index=False)

    split_counts = tracks["split"].value_counts() if "split" in tracks else pd.Series(dtype=int)
    n_datasets = tracks["dataset"].nunique() if "dataset" in tracks else 0
    methods = list(dict.fromkeys(summary["method"])) if not summary.empty else []
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    counts = ", ".join(f"{split} {split_counts[split]}" for split in SPLIT_ORDER if split in split_counts)
    parts: list[str] = []
    parts.append(
        f"<header><h1>{_esc(title)}</h1><p class='meta'>{len(tracks)} tracks in {n_datasets} dataset(s) "
        f"({_esc(counts)}) · methods: {_esc(', '.join(methods))} · beat metrics ignore the first "
        f"{trim_seconds:g} s · code <code>{_esc(git_revision)}</code> · generated {generated}</p></header>"
    )
    parts.append(
        "<nav><a href='#summary'>Summary</a><a href='#distributions'>Distributions</a>"
        "<a href='#other-splits'>Validation &amp; training</a><a href='#grid'>Beatgrids</a>"
        "<a href='#tracks'>Tracks</a><a href='#training'>Training</a><a href='#variants'>Variants</a>"
        "<a href='#provenance'>Config &amp; versions</a></nav>"
    )

    tables = _summary_tables(summary)
    report_split = next((s for s in SPLIT_ORDER if s in tables), next(iter(tables), None))
    parts.append(f"<h2 id='summary'>Summary — {_esc(report_split or 'no results')} split</h2>")
    if report_split:
        parts.append(tables[report_split])
        parts.append(
            "<p class='note'>Means over tracks (downbeat F only over tracks with a downbeat annotation and a "
            "downbeat estimate; Acc1/Acc2 are fractions of tracks); <i>grid err</i> is the median over tracks of "
            "each track's median distance from an annotated beat to the nearest grid line. Bold: best per "
            "dataset. <code>librosa</code> is the reference peer (librosa.beat.beat_track, default settings). "
            "Hover a header for its definition.</p>"
        )
    else:
        parts.append("<p class='note'>No evaluation results.</p>")
    parts.append("<div class='figrow' id='distributions'>")
    parts.append(_img(figures["f_measure_distribution"], "F-measure distributions", width=690))
    parts.append(_img(figures["tempo_scatter"], "tempo scatter", width=440))
    parts.append("</div>")

    parts.append("<h2 id='other-splits'>Validation and training splits</h2>")
    other = [s for s in tables if s != report_split]
    if other:
        parts.append(
            "<p class='note'>Variants are chosen on the validation split; the training split shows how well "
            "the models fit the data they were trained on.</p>"
        )
        for split in other:
            parts.append(f"<h3>{_esc(split)}</h3>{tables[split]}")
    else:
        parts.append("<p class='note'>No other splits.</p>")

    parts.append("<h2 id='grid'>Beatgrids: confidence and flagged tracks</h2>")
    parts.append("<div class='cols'>")
    parts.append(
        _img(
            figures["grid_confidence"],
            "grid confidence vs phase error",
            f"Each point is a track (× = tempo off by more than 4 %). Dashed: {DJ_TOLERANCE_MS:g} ms, about what "
            f"DJ use tolerates; dotted: the flagging threshold {confidence_threshold:g}. An honest confidence puts "
            "the bad grids on its left.",
            width=470,
        )
    )
    grid_rows = per_track[per_track["grid_confidence"].notna()] if "grid_confidence" in per_track else per_track.iloc[0:0]
    if len(grid_rows):
        bad = (grid_rows["tempo_acc1"] < 1) | (grid_rows["grid_phase_error_ms"] > DJ_TOLERANCE_MS)
        low = grid_rows["grid_confidence"] < confidence_threshold
        stats = (
            f"{int(low.sum())} of {len(grid_rows)} beatgrids (all methods and splits) have confidence below "
            f"{confidence_threshold:g}. Of the flagged, {int((bad & low).sum())} are wrong (tempo off by &gt; 4 % "
            f"or median error &gt; {DJ_TOLERANCE_MS:g} ms); of the unflagged, {int((bad & ~low).sum())} of "
            f"{int((~low).sum())} are wrong."
        )
    else:
        stats = "No method wrote a beatgrid."
    flagged_html = (
        _html_table(flagged.head(50), list(flagged.columns), _FLAGGED_HEADERS, best_within=None)
        if len(flagged)
        else "<p class='note'>No track flagged.</p>"
    )
    more = f"<p class='note'>First 50 of {len(flagged)}; all in flagged_tracks.csv.</p>" if len(flagged) > 50 else ""
    parts.append(f"<div style='flex:1 1 300px'><h3>Flagged tracks</h3><p class='note'>{stats}</p></div></div>")
    parts.append(flagged_html + more)

    parts.append("<h2 id='tracks'>Worst and best tracks</h2>")
    track_figs = [k for k in figures if k.startswith("track_")]
    if track_figs:
        parts.append(
            "<p class='note'>Log-mel spectrogram, network activations, and annotated (black, top row) vs "
            "predicted beats per method (tall ticks: downbeats); grey lines: annotated beats; shaded: the "
            "trimmed start the beat metrics ignore.</p>"
        )
        parts += [_img(figures[k], k, width=1000) for k in track_figs]
    else:
        parts.append("<p class='note'>No per-track panels.</p>")

    parts.append("<h2 id='training'>Training curves</h2>")
    parts.append(_img(figures["training_curves"], "training curves", width=min(1160, 520 * max(1, len(history_csvs)))))

    parts.append("<h2 id='variants'>Variant selection</h2>")
    variants = variant_table(per_track, "beat_f", "val") if len(per_track) else pd.DataFrame()
    multi = variants[variants.groupby("base_method")["method"].transform("count") > 1] if len(variants) else variants
    if len(multi):
        chosen = set(summary["variant"]) if "variant" in summary else set()
        multi = multi.assign(chosen=multi["method"].isin(chosen))
        parts.append(
            "<p class='note'>Settings given as lists expand into variants; each is scored on the validation "
            "split and the variant with the highest mean beat F is reported on test under its base name.</p>"
        )
        parts.append(_html_table(multi, ["base_method", "method", "n_tracks", "beat_f", "chosen"],
                                 {"beat_f": "val beat F"}, text_columns=("base_method", "method", "chosen")))  # fmt: skip
    else:
        parts.append("<p class='note'>Every method ran with a single setting; nothing to select.</p>")

    parts.append("<h2 id='left-out'>Inputs left out</h2>")
    if left_out is not None and len(left_out):
        parts.append(f"<p class='note'>{len(left_out)} input(s) are in no result: rejected by the index "
                     "(results/index/rejected.csv) or dropped by a shard job (the store's <code>dropped</code> "
                     "attribute).</p>")
        parts.append(_html_table(left_out.head(200), ["stage", "file", "reason"], {}, best_within=None,
                                 text_columns=("stage", "file", "reason")))
    else:
        parts.append("<p class='note'>None: every input is in the results.</p>")
    parts.append("<h2 id='provenance'>Config, package versions and revision</h2><div class='cols'>")
    version_rows = "".join(
        f"<tr><td class='txt'>{_esc(k)}</td><td class='txt'>{_esc(v)}</td></tr>" for k, v in versions.items()
    )
    parts.append(
        f"<div><h3>Packages</h3><table><tbody>{version_rows}"
        f"<tr><td class='txt'>git revision</td><td class='txt'><code>{_esc(git_revision)}</code></td></tr>"
        f"</tbody></table></div>"
    )
    config_yaml = yaml.safe_dump(plain(config), sort_keys=False, default_flow_style=None, width=100)
    parts.append(f"<div style='flex:1;min-width:420px'><h3>config.yaml</h3><pre>{_esc(config_yaml)}</pre></div></div>")
    parts.append(_split_membership(tracks))

    return _write_page(out_dir, title, parts)


def _write_page(out_dir: Path, title: str, parts: Sequence[str]) -> Path:
    """``out_dir/index.html``: a self-contained page of ``parts`` (written to a temporary name, then renamed)."""
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>"
        + "\n".join(parts)
        + "</main></body></html>\n"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def write_report(
    out_dir: str | Path,
    *,
    per_track_csv: str | Path,
    summary_csv: str | Path,
    tracks_csv: str | Path,
    config: Mapping[str, Any],
    history_csvs: Mapping[str, str | Path | None],
    prediction_dirs: Iterable[str | Path] = (),
    mel_paths: Iterable[str | Path] = (),
    activation_paths: Iterable[str | Path] = (),
    target_paths: Iterable[str | Path] | None = None,
    example_method: str | None = None,
    n_best: int = 2,
    n_worst: int = 2,
    repo_dir: str | Path = ".",
    rejected_csv: str | Path | None = None,
    dropped_from: Iterable[str | Path] = (),
) -> Path:
    """The report stage in one call: read the evaluation tables, pick and load example tracks, build the report.

    Args:
        out_dir: ``results/report``.
        per_track_csv, summary_csv: the evaluation stage's tables.
        tracks_csv: the index.
        config: the workflow config.
        history_csvs: model name -> ``history.csv``.
        prediction_dirs: ``results/predictions/{method}`` folders (folder name = method);
            the panels show the variants the summary reports, under their base names.
        mel_paths, activation_paths: per-shard stores ``{shard}.h5``.
        target_paths: target stores for the annotated beats of the panels (default: the
            annotation files named in the index).
        example_method: method (base name) whose best and worst tracks get panels;
            default the first method of the summary that is not a reference tracker.
        n_best, n_worst: panels per kind.
        repo_dir: where to read the git revision.
        rejected_csv, dropped_from: the index's rejected inputs and the stores whose shard
            jobs may have dropped tracks (listed under "Inputs left out").

    Returns:
        path of ``index.html``.
    """
    from beatgrid.evaluation import references_from_annotations, references_from_targets
    from beatgrid.reference import REFERENCE_TRACKERS

    per_track = pd.read_csv(per_track_csv, dtype={"track_id": str})
    summary = pd.read_csv(summary_csv)
    tracks = pd.read_csv(tracks_csv, dtype={"track_id": str, "shard": str})
    chosen = _chosen_variants(per_track, summary)
    if example_method is None:
        example_method = next((m for m in chosen if m not in REFERENCE_TRACKERS), next(iter(chosen), None))
    examples: list[dict[str, Any]] = []
    if example_method is not None and example_method in chosen and len(per_track):
        selected = select_examples(per_track, chosen[example_method], n_best=n_best, n_worst=n_worst)
        for item in selected:
            item["method"] = example_method
        wanted = {t["track_id"] for t in selected}
        subset = tracks[tracks["track_id"].isin(wanted)]
        references = (
            references_from_targets(target_paths, subset) if target_paths is not None else references_from_annotations(subset)
        )
        folders = {Path(d).name: Path(d) for d in prediction_dirs}
        shown = {base: folders[variant] for base, variant in chosen.items() if variant in folders}
        examples = collect_examples(
            selected,
            tracks,
            references,
            shown,
            mel_store={Path(p).stem: p for p in mel_paths},
            activation_store={Path(p).stem: p for p in activation_paths},
        )
    return build_report(
        out_dir,
        per_track=per_track,
        summary=summary,
        tracks=tracks,
        config=config,
        history_csvs=history_csvs,
        examples=examples,
        package_versions=_package_versions(),
        git_revision=git_revision(repo_dir),
        left_out=left_out_inputs(rejected_csv, dropped_from),
    )


# ---------------------------------------------------------------------------
# adaptation (beatgrid.adapt): pretrained vs adapted (K-fold CV) vs librosa, learning curve


def figure_learning_curve(curve: pd.DataFrame) -> Figure:
    """Beat F, downbeat F and tempo Acc1 against the number of annotated tracks adapted on, per method."""
    metrics = (("beat_f", "beat F-measure"), ("downbeat_f", "downbeat F-measure"), ("tempo_acc1", "tempo Acc1"))
    fig, axes = _subplots(1, 3, figsize=(11, 3.4), sharex=True)
    for ax, (metric, title) in zip(axes, metrics):
        if curve.empty:
            _placeholder(ax, "no learning curve")
            continue
        for i, (method, rows) in enumerate(curve.groupby("method", sort=False)):
            rows = rows.sort_values("n_tracks")
            ax.plot(rows["n_tracks"], rows[metric], "o-", color=_COLORS[i % 10], label=method)
        ax.set_title(title)
        ax.set_xlabel("annotated tracks adapted on")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    if not curve.empty:
        axes[0].set_ylabel(f"mean over {int(curve['n_eval_tracks'].max())} held-out tracks")
        axes[-1].legend(fontsize=8, loc="lower right")
    return fig


def write_adapt_report(cv_dir: str | Path, out_dir: str | Path, title: str = "beatgrid adaptation") -> Path:
    """``out_dir/index.html`` (self-contained) from :func:`beatgrid.adapt.combine_cv`'s tables in ``cv_dir``.

    Per dataset: the unadapted model, the adapted one estimated by K-fold cross-validation
    (each track scored by the model that did not train on it) and librosa, side by side; the
    per-track spread; the learning curve. Figures are also written as PNG to ``out_dir/figures``.
    """
    cv_dir, out_dir = Path(cv_dir), Path(out_dir)
    per_track = pd.read_csv(cv_dir / "per_track.csv", dtype={"track_id": str})
    summary = pd.read_csv(cv_dir / "summary.csv")
    curve = pd.read_csv(cv_dir / "learning_curve.csv") if (cv_dir / "learning_curve.csv").is_file() else pd.DataFrame()
    figures = out_dir / "figures"
    spread = _save(figure_f_distribution(per_track, summary), figures / "adapt_f_distribution.png")
    curve_png = _save(figure_learning_curve(curve), figures / "learning_curve.png")
    spread_columns = ["dataset", "method", "n_tracks", "beat_f", "beat_f_std", "beat_f_q25", "beat_f_q75",
                      "downbeat_f", "downbeat_f_std", "tempo_acc1"]
    spread_table = _html_table(summary, [c for c in spread_columns if c in summary], best_within="dataset",
                               group_by="dataset")
    parts = [
        f"<h1>{_esc(title)}</h1>",
        "<p class='note'>Every adapted score is cross-validated: the adapt tracks are split into folds by a "
        "hash of their id, and each fold's tracks are scored by the model adapted on the other folds only. "
        "The pretrained model and librosa are scored on the same tracks.</p>",
        *_summary_tables(summary).values(),
        "<h2>Per-track spread</h2>", spread_table,
        _img(spread, "per-track F-measures", "Per-track beat and downbeat F of every method."),
        "<h2>Learning curve</h2>",
        _img(curve_png, "learning curve", "Mean scores on the first folds' held-out tracks against the number "
             "of annotated tracks the model adapted on (0: the unadapted model)."),
    ]
    if not curve.empty:
        parts.append(_html_table(curve, ["method", "n_tracks", "n_eval_tracks", "beat_f", "downbeat_f", "tempo_acc1"]))
    return _write_page(out_dir, title, parts)
