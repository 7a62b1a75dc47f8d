"""The report pages: :func:`build_report` (evaluation), :func:`write_report` (the report
stage from its files) and :func:`write_adapt_report` (adaptation)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..evaluation import SPLIT_ORDER
from ..io import atomic_write
from ..provenance import git_revision as _git_revision
from ..provenance import package_versions as _package_versions
from . import sections
from .data import chosen_variants, collect_examples, flag_tracks, left_out_inputs, select_examples
from .figures import figure_f_distribution, figure_learning_curve, save_figure, write_report_figures
from .html import figure_html, html_table, render, write_page

__all__ = ["build_report", "write_report", "write_adapt_report"]


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
        package_versions: name -> version (default :func:`beatgrid.provenance.package_versions`).
        git_revision: revision of the code that produced the results.
        confidence_threshold: beatgrids below this confidence are flagged.

    Returns:
        path of ``index.html``.
    """
    out_dir = Path(out_dir)
    trim_seconds = float((config.get("evaluation") or {}).get("trim_seconds", 5.0))
    figures = write_report_figures(out_dir / "figures", per_track=per_track, summary=summary,
                                   history_csvs=history_csvs, examples=examples,
                                   confidence_threshold=confidence_threshold, trim_seconds=trim_seconds)
    flagged = flag_tracks(per_track, confidence_threshold)
    atomic_write(out_dir / "flagged_tracks.csv", partial(flagged.to_csv, index=False))
    tables = sections.summary_tables(summary)
    shown = next((s for s in SPLIT_ORDER if s in tables), next(iter(tables), None))
    versions = dict(package_versions) if package_versions is not None else _package_versions()
    return write_page(out_dir, title, [
        sections.header(title, tracks, summary, trim_seconds, git_revision),
        sections.summary(tables, shown, figures),
        sections.other_splits(tables, shown),
        sections.beatgrids(per_track, flagged, figures["grid_confidence"], confidence_threshold),
        sections.tracks(figures),
        sections.training(figures["training_curves"], len(history_csvs)),
        sections.variants(per_track, summary),
        sections.left_out(left_out),
        sections.provenance(config, versions, git_revision, tracks),
    ])


def _load_examples(per_track: pd.DataFrame, summary: pd.DataFrame, tracks: pd.DataFrame, *,
                   example_method: str | None, n_best: int, n_worst: int,
                   prediction_dirs: Iterable[str | Path], mel_paths: Iterable[str | Path],
                   activation_paths: Iterable[str | Path],
                   target_paths: Iterable[str | Path] | None) -> list[dict[str, Any]]:
    """The per-track panels of :func:`write_report`: the best and worst tracks of
    ``example_method`` (default: the first of beatgrid's own methods, not a peer tracker)."""
    from ..evaluation import references_from_annotations, references_from_targets
    from ..methods import METHODS

    chosen = chosen_variants(per_track, summary)
    if example_method is None:
        example_method = next((m for m in chosen if m in METHODS), next(iter(chosen), None))
    if example_method is None or example_method not in chosen or not len(per_track):
        return []
    selected = select_examples(per_track, chosen[example_method], n_best=n_best, n_worst=n_worst)
    for item in selected:
        item["method"] = example_method
    subset = tracks[tracks["track_id"].isin({t["track_id"] for t in selected})]
    references = (references_from_targets(target_paths, subset) if target_paths is not None
                  else references_from_annotations(subset))
    folders = {Path(d).name: Path(d) for d in prediction_dirs}
    shown = {base: folders[variant] for base, variant in chosen.items() if variant in folders}
    return collect_examples(selected, tracks, references, shown,
                            mel_store={Path(p).stem: p for p in mel_paths},
                            activation_store={Path(p).stem: p for p in activation_paths})


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
            default the first method of the summary that is one of beatgrid's
            (:data:`beatgrid.methods.METHODS`), not a peer tracker such as librosa.
        n_best, n_worst: panels per kind.
        repo_dir: where to read the git revision.
        rejected_csv, dropped_from: the index's rejected inputs and the stores whose shard
            jobs may have dropped tracks (listed under "Inputs left out").

    Returns:
        path of ``index.html``.
    """
    per_track = pd.read_csv(per_track_csv, dtype={"track_id": str})
    summary = pd.read_csv(summary_csv)
    tracks = pd.read_csv(tracks_csv, dtype={"track_id": str, "shard": str})
    examples = _load_examples(per_track, summary, tracks, example_method=example_method, n_best=n_best,
                              n_worst=n_worst, prediction_dirs=prediction_dirs, mel_paths=mel_paths,
                              activation_paths=activation_paths, target_paths=target_paths)
    return build_report(out_dir, per_track=per_track, summary=summary, tracks=tracks, config=config,
                        history_csvs=history_csvs, examples=examples, package_versions=_package_versions(),
                        git_revision=_git_revision(repo_dir), left_out=left_out_inputs(rejected_csv, dropped_from))


def write_adapt_report(cv_dir: str | Path, out_dir: str | Path, title: str = "beatgrid adaptation") -> Path:
    """``out_dir/index.html`` (self-contained) from :func:`beatgrid.adapt.combine_cv`'s tables in ``cv_dir``.

    Per dataset: the unadapted model, the adapted one estimated by K-fold cross-validation
    (each track scored by the model that did not train on it) and librosa, side by side; the
    per-track spread and 95 % intervals of the means; what adaptation changed on the same
    tracks (``gain.csv``); the learning curve. Figures are also written as PNG to ``out_dir/figures``.
    """
    cv_dir, out_dir = Path(cv_dir), Path(out_dir)
    per_track = pd.read_csv(cv_dir / "per_track.csv", dtype={"track_id": str})
    summary = pd.read_csv(cv_dir / "summary.csv")
    curve = pd.read_csv(cv_dir / "learning_curve.csv") if (cv_dir / "learning_curve.csv").is_file() else pd.DataFrame()
    gain = pd.read_csv(cv_dir / "gain.csv") if (cv_dir / "gain.csv").is_file() else pd.DataFrame()
    figures = out_dir / "figures"
    spread = save_figure(figure_f_distribution(per_track, summary), figures / "adapt_f_distribution.png")
    curve_png = save_figure(figure_learning_curve(curve), figures / "learning_curve.png")
    spread_columns = ["dataset", "method", "n_tracks", "beat_f", "beat_f_ci_low", "beat_f_ci_high", "beat_f_std",
                      "beat_f_q25", "beat_f_q75", "downbeat_f", "downbeat_f_ci_low", "downbeat_f_ci_high",
                      "downbeat_f_std", "tempo_acc1"]
    curve_columns = ["method", "n_tracks", "n_eval_tracks", "beat_f", "downbeat_f", "tempo_acc1"]
    page = render(
        "sections/adapt.html.j2", title=title,
        summary_tables=list(sections.summary_tables(summary).values()),
        spread_table=html_table(summary, [c for c in spread_columns if c in summary], best_within="dataset",
                                group_by="dataset"),
        spread_figure=figure_html(spread, "per-track F-measures", "Per-track beat and downbeat F of every method."),
        curve_figure=figure_html(curve_png, "learning curve", "Mean scores on the first folds' held-out tracks "
                                 "against the number of annotated tracks the model adapted on (0: the unadapted model)."),
        curve_table=None if curve.empty else html_table(curve, curve_columns),
        gain_table=None if gain.empty else html_table(gain, list(gain.columns), group_by="dataset"),
    )  # fmt: skip
    return write_page(out_dir, title, [page])
