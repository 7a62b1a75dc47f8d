"""The report's figures, drawn on matplotlib's Agg canvas without pyplot: no display is
needed and importing this module leaves the caller's matplotlib backend alone."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write
from .data import chosen_variants, report_split

__all__ = ["FIGURE_NAMES", "DJ_TOLERANCE_MS", "write_report_figures", "save_figure", "figure_f_distribution",
           "figure_tempo_scatter", "figure_grid_confidence", "figure_training_curves", "figure_track",
           "figure_learning_curve"]

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


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot: an Agg figure that no GUI backend or global state sees."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.45")
    ax.set_xticks([])
    ax.set_yticks([])


def _fixed_log_ticks(axis, ticks: Sequence[float], fmt: str) -> None:
    """Label a log-scaled ``axis`` at ``ticks`` only, as plain numbers (``fmt``), without minor labels."""
    axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter(fmt))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _finish_scatter(ax, xlabel: str, ylabel: str, title: str, **legend: Any) -> None:
    """Axis labels, title, a light grid at the major and minor (log) ticks, and the legend
    (``legend``: its options) of a per-track scatter."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.25, which="both")
    ax.legend(**legend)


def _plot_rows(per_track: pd.DataFrame, summary: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str], str | None]:
    """Rows of the chosen variants on the report split, labelled by base method; method order."""
    if per_track.empty:
        return per_track, [], None
    chosen = chosen_variants(per_track, summary)
    split = report_split(per_track)
    rows = per_track[(per_track["split"] == split) & per_track["method"].isin(chosen.values())].copy()
    to_base = {v: b for b, v in chosen.items()}
    rows["label"] = rows["method"].map(to_base)
    return rows, [b for b, v in chosen.items() if v in set(rows["method"])], split


def figure_f_distribution(per_track: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Box + strip plot of per-track beat F and downbeat F per method on the report split.

    Methods that differ only in a parenthesised label (the adaptation report's
    ``crnn_dbn (pretrained)`` and ``crnn_dbn (adapted, 5-fold CV)``) sit side by side; the
    dataset legend stands outside the axes, so it never hides a score.
    """
    from ..adapt import unlabelled_method

    rows, methods, split = _plot_rows(per_track, summary)
    group = {base: i for i, base in enumerate(dict.fromkeys(map(unlabelled_method, methods)))}
    methods = sorted(methods, key=lambda m: group[unlabelled_method(m)])  # stable: label order kept
    width = max(9.5, 2.0 + 1.1 * len(methods))
    fig, axes = _subplots(1, 2, figsize=(width, 4.2), sharey=True)
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
        ax.set_xticks(positions, methods, rotation=35, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_title(f"{title} ({split})")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("per-track score")
    handles, labels = axes[0].get_legend_handles_labels()
    if len(datasets) > 1 and handles:
        unique = dict(zip(labels, handles))
        axes[1].legend(unique.values(), unique.keys(), title="dataset", fontsize=8, loc="center left",
                       bbox_to_anchor=(1.02, 0.5), frameon=False)
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
        _fixed_log_ticks(axis, ticks, "%d")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    _finish_scatter(ax, "annotated tempo (BPM)", "estimated tempo (BPM)", f"tempo ({split})", fontsize=8, loc="upper left")
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
    _fixed_log_ticks(ax.yaxis, [t for t in _LOG_TICKS_MS if low <= t <= high], "%g")
    _finish_scatter(ax, "grid confidence", "grid phase error (ms, median per track)",
                    f"beatgrid confidence vs error ({split})", fontsize=7, loc="best")
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


def save_figure(fig: Figure, path: Path) -> Path:
    """``fig`` as a PNG at ``path``, atomically (the parent folder is created)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=_DPI, format="png"))


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
    paths = {name: save_figure(fig, out_dir / f"{name}.png") for name, fig in figures.items()}
    for n, example in enumerate(examples):
        stem = _safe_stem(f"track_{n:02d}_{example.get('label', 'example')}_{example['track_id']}")
        paths[stem] = save_figure(figure_track(example, window_s=window_s, trim_seconds=trim_seconds), out_dir / f"{stem}.png")
    return paths



def figure_learning_curve(curve: pd.DataFrame) -> Figure:
    """Beat F, downbeat F and tempo Acc1 against the number of annotated tracks adapted on, per
    method, each mean in the band of its 95 % interval where the table has one."""
    metrics = (("beat_f", "beat F-measure"), ("downbeat_f", "downbeat F-measure"), ("tempo_acc1", "tempo Acc1"))
    fig, axes = _subplots(1, 3, figsize=(11, 3.4), sharex=True)
    for ax, (metric, title) in zip(axes, metrics):
        if curve.empty:
            _placeholder(ax, "no learning curve")
            continue
        for i, (method, rows) in enumerate(curve.groupby("method", sort=False)):
            rows = rows.sort_values("n_tracks")
            ax.plot(rows["n_tracks"], rows[metric], "o-", color=_COLORS[i % 10], label=method)
            if f"{metric}_ci_low" in rows:  # tables written before the intervals have none
                ax.fill_between(rows["n_tracks"], rows[f"{metric}_ci_low"], rows[f"{metric}_ci_high"],
                                color=_COLORS[i % 10], alpha=0.12, linewidth=0)
        ax.set_title(title)
        ax.set_xlabel("annotated tracks adapted on")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    if not curve.empty:
        axes[0].set_ylabel(f"mean over {int(curve['n_eval_tracks'].max())} held-out tracks")
        axes[-1].legend(fontsize=8, loc="lower right")
    return fig

