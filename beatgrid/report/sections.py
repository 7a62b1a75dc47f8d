"""One function per section of the report page: each takes what its section shows and
returns its HTML (``templates/sections/<name>.html.j2``)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml
from markupsafe import Markup

from ..evaluation import MARKDOWN_COLUMNS, SPLIT_ORDER, variant_table
from ..provenance import plain
from .figures import DJ_TOLERANCE_MS
from .html import figure_html, html_table, render

__all__ = ["summary_tables", "header", "summary", "other_splits", "beatgrids", "tracks", "training",
           "variants", "left_out", "provenance"]

FLAGGED_HEADERS = {
    "track_id": "track", "dataset": "data", "split": "split", "grid_confidence": "confidence",
    "est_bpm": "est. BPM", "ref_bpm": "ann. BPM",
    "tempo_acc1": "Acc1", "grid_phase_error_ms": "grid err ms", "beat_f": "beat F",
}  # fmt: skip
FULL_COLUMNS = [
    "n_tracks", "beat_f", "beat_cemgil", "beat_goto", "beat_pscore", "beat_cmlc", "beat_cmlt",
    "beat_amlc", "beat_amlt", "beat_infogain", "n_downbeat_tracks", "downbeat_f", "tempo_acc1",
    "tempo_acc2", "n_grid_tracks", "grid_confidence", "grid_phase_error_ms", "grid_max_error_ms",
    "grid_phase_bias_ms",
]  # fmt: skip
#: Flagged tracks shown on the page (all of them are in flagged_tracks.csv).
MAX_FLAGGED_ROWS = 50
MAX_LEFT_OUT_ROWS = 200


def _split_key(split: str) -> tuple[int, str]:
    """Sort key: test, val, train first, other splits after them by name."""
    order = {name: i for i, name in enumerate(SPLIT_ORDER)}
    return order.get(split, 99), split


def _split_rows(summary: pd.DataFrame, split: str) -> pd.DataFrame:
    """The summary rows of ``split``, grouped by dataset with the all-datasets rows first
    (so that the first screen shows the overall comparison); the ``all`` rows dropped when
    there is one dataset."""
    rows = summary[summary["split"] == split]
    if rows.loc[rows["dataset"] != "all", "dataset"].nunique() <= 1:
        rows = rows[rows["dataset"] != "all"]
    datasets = ["all"] + list(dict.fromkeys(d for d in rows["dataset"] if d != "all"))
    rows = rows.assign(_d=rows["dataset"].map({d: i for i, d in enumerate(datasets)})).sort_values("_d", kind="stable")
    return rows.drop(columns="_d")


def summary_tables(summary: pd.DataFrame) -> dict[str, Markup]:
    """Split -> its key-metrics table, with every metric in a ``<details>`` below it."""
    if summary.empty:
        return {}
    key_columns = [c for c in MARKDOWN_COLUMNS if c in summary.columns] + ["grid_confidence"]
    headers = {**MARKDOWN_COLUMNS, "grid_phase_error_ms": "grid err ms", "grid_confidence": "grid conf."}
    full_headers = {c: c.replace("beat_", "").replace("grid_", "grid ").replace("_", " ") for c in FULL_COLUMNS}
    tables = {}
    for split in sorted(summary["split"].unique(), key=_split_key):
        rows = _split_rows(summary, split)
        key = html_table(rows, ["dataset", *[c for c in key_columns if c != "dataset"]], headers,
                         best_within="dataset", group_by="dataset")
        full = html_table(rows, ["dataset", "method", *[c for c in FULL_COLUMNS if c in rows]], full_headers,
                          best_within="dataset", group_by="dataset")
        tables[split] = render("sections/split_table.html.j2", split=split, table=key, full=full)
    return tables


def header(title: str, tracks: pd.DataFrame, summary: pd.DataFrame, trim_seconds: float,
           git_revision: str) -> Markup:
    """Title, what the results cover (tracks per split, methods, trimmed seconds), the code
    revision and the time of writing; the section links."""
    split_counts = tracks["split"].value_counts() if "split" in tracks else pd.Series(dtype=int)
    return render(
        "sections/header.html.j2", title=title, n_tracks=len(tracks),
        n_datasets=tracks["dataset"].nunique() if "dataset" in tracks else 0,
        counts=", ".join(f"{split} {split_counts[split]}" for split in SPLIT_ORDER if split in split_counts),
        methods=list(dict.fromkeys(summary["method"])) if not summary.empty else [],
        trim_seconds=f"{trim_seconds:g}", git_revision=git_revision,
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )  # fmt: skip


def summary(tables: Mapping[str, Markup], split: str | None, figures: Mapping[str, Path]) -> Markup:
    """The summary table of the report split, the F-measure distributions and the tempo scatter."""
    return render("sections/summary.html.j2", split=split, table=tables.get(split) if split else None,
                  distributions=figure_html(figures["f_measure_distribution"], "F-measure distributions", width=690),
                  tempo=figure_html(figures["tempo_scatter"], "tempo scatter", width=440))


def other_splits(tables: Mapping[str, Markup], shown: str | None) -> Markup:
    """The summary tables of the splits other than the report split ``shown``."""
    return render("sections/other_splits.html.j2", tables={s: t for s, t in tables.items() if s != shown})


def beatgrids(per_track: pd.DataFrame, flagged: pd.DataFrame, figure: Path, threshold: float) -> Markup:
    """Grid confidence against phase error, how many flagged grids are wrong (and unflagged
    ones), and the flagged tracks."""
    caption = (f"Each point is a track (× = tempo off by more than 4 %). Dashed: {DJ_TOLERANCE_MS:g} ms, about "
               f"what DJ use tolerates; dotted: the flagging threshold {threshold:g}. An honest confidence puts "
               "the bad grids on its left.")
    grids = per_track[per_track["grid_confidence"].notna()] if "grid_confidence" in per_track else per_track.iloc[0:0]
    counts: dict[str, int] = {}
    if len(grids):
        bad = (grids["tempo_acc1"] < 1) | (grids["grid_phase_error_ms"] > DJ_TOLERANCE_MS)
        low = grids["grid_confidence"] < threshold
        counts = {"n_low": int(low.sum()), "n_low_bad": int((bad & low).sum()),
                  "n_high_bad": int((bad & ~low).sum()), "n_high": int((~low).sum())}
    shown = flagged.head(MAX_FLAGGED_ROWS)
    return render(
        "sections/beatgrids.html.j2", n_grids=len(grids), threshold=f"{threshold:g}",
        tolerance_ms=f"{DJ_TOLERANCE_MS:g}", n_flagged=len(flagged), n_shown=len(shown),
        figure=figure_html(figure, "grid confidence vs phase error", caption, width=470),
        flagged_table=html_table(shown, list(flagged.columns), FLAGGED_HEADERS) if len(flagged) else None,
        **counts,
    )  # fmt: skip


def tracks(figures: Mapping[str, Path]) -> Markup:
    """The per-track panels (figures named ``track_*``), worst first."""
    panels = [figure_html(path, name, width=1000) for name, path in figures.items() if name.startswith("track_")]
    return render("sections/tracks.html.j2", panels=panels)


def training(figure: Path, n_models: int) -> Markup:
    """The training curves of ``n_models`` models side by side."""
    return render("sections/training.html.j2",
                  figure=figure_html(figure, "training curves", width=min(1160, 520 * max(1, n_models))))


def variants(per_track: pd.DataFrame, summary: pd.DataFrame) -> Markup:
    """The variants of the methods that ran with several settings: validation beat F of
    each, and which one the summary reports."""
    table = variant_table(per_track, "beat_f", "val") if len(per_track) else pd.DataFrame()
    multi = table[table.groupby("base_method")["method"].transform("count") > 1] if len(table) else table
    rendered = None
    if len(multi):
        chosen = set(summary["variant"]) if "variant" in summary else set()
        multi = multi.assign(chosen=multi["method"].isin(chosen))
        rendered = html_table(multi, ["base_method", "method", "n_tracks", "beat_f", "chosen"], {"beat_f": "val beat F"},
                              text_columns=("base_method", "method", "chosen"))
    return render("sections/variants.html.j2", table=rendered)


def left_out(inputs: pd.DataFrame | None) -> Markup:
    """The inputs that are in no result (:func:`beatgrid.report.left_out_inputs`)."""
    table = None
    if inputs is not None and len(inputs):
        columns = ["stage", "file", "reason"]
        table = html_table(inputs.head(MAX_LEFT_OUT_ROWS), columns, {}, text_columns=columns)
    return render("sections/left_out.html.j2", table=table, n_left_out=0 if inputs is None else len(inputs))


def provenance(config: Mapping[str, Any], versions: Mapping[str, str], git_revision: str,
               tracks: pd.DataFrame) -> Markup:
    """Package versions, the git revision, the config as YAML, and the split of every track
    (a hash of its track_id and split.seed)."""
    splits: dict[str, list[str]] = {}
    if "split" in tracks and not tracks.empty:
        for split in sorted(tracks["split"].unique(), key=_split_key):
            splits[split] = sorted(tracks.loc[tracks["split"] == split, "track_id"].astype(str))
    config_yaml = yaml.safe_dump(plain(config), sort_keys=False, default_flow_style=None, width=100)
    return render("sections/provenance.html.j2", versions=versions, git_revision=git_revision,
                  config_yaml=config_yaml, splits=splits)
