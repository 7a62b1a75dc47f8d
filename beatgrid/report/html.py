"""HTML through jinja2 templates (``templates/``): the page, tables and embedded figures.

Templates autoescape; Python code here only decides what a cell says and how it is marked
(number format, the best value of a column in bold, the variant a method ran as).
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from ..methods import VARIANT_SEPARATOR
from ..io import atomic_write_text

__all__ = ["METRIC_HELP", "render", "html_table", "figure_html", "write_page"]

LOWER_IS_BETTER = {"grid_phase_error_ms", "grid_max_error_ms"}
#: Header tooltips: what each metric column means.
METRIC_HELP = {
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
for _metric in ("beat_f", "downbeat_f", "tempo_acc1"):  # the adaptation report's spread and gain columns
    METRIC_HELP[f"{_metric}_ci_low"] = f"{_metric}: low end of the 95 % bootstrap interval of the mean over tracks"
    METRIC_HELP[f"{_metric}_ci_high"] = f"{_metric}: high end of the 95 % bootstrap interval of the mean over tracks"
    METRIC_HELP[f"{_metric}_std"] = f"{_metric}: standard deviation over tracks"
    METRIC_HELP[f"{_metric}_gain"] = f"{_metric}: mean of adapted minus pretrained over the same tracks"
    METRIC_HELP[f"{_metric}_gain_ci_low"] = f"{_metric} gain: low end of its 95 % paired bootstrap interval"
    METRIC_HELP[f"{_metric}_gain_ci_high"] = f"{_metric} gain: high end of its 95 % paired bootstrap interval"
TEXT_COLUMNS = ("method", "dataset", "split", "track_id", "variant")
MISSING = "–"


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("beatgrid.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render(template: str, **context: Any) -> Markup:
    """``templates/<template>`` rendered with ``context`` (markup, safe to nest)."""
    return Markup(_environment().get_template(template).render(**context))


def format_value(value: Any, column: str) -> str:
    """A cell's text: ``–`` for missing, yes/no, integers as is; ms and BPM to 0.1, counts
    to 1, other numbers to 0.001."""
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return MISSING
        if column.endswith("_ms") or column.endswith("bpm"):
            return f"{value:.1f}"
        if column.startswith("n_"):
            return f"{value:.0f}"
        return f"{value:.3f}"
    return str(value)


def _best_values(df: pd.DataFrame, columns: Sequence[str], text_columns: set[str],
                 best_within: str) -> dict[tuple[Any, str], float]:
    """(group, column) -> the best value of a numeric column within each ``best_within``
    group of two or more rows, where the values differ and one is better."""
    best: dict[tuple[Any, str], float] = {}
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
            best[(key, col)] = np.nanmin(vals) if col in LOWER_IS_BETTER else np.nanmax(vals)
    return best


def _cell(record: Mapping[str, Any], column: str, text_columns: set[str], best_within: str | None,
          best: Mapping[tuple[Any, str], float]) -> dict[str, Any]:
    value = record.get(column)
    text = format_value(value, column)
    classes = ["txt"] if column in text_columns else []
    if text == MISSING:
        classes.append("na")
    key = (record.get(best_within), column) if best_within else None
    if key in best and isinstance(value, (float, int, np.floating, np.integer)) and np.isclose(value, best[key]):
        classes.append("best")
    variant = record.get("variant")
    suffix = None
    if column == "method" and isinstance(variant, str) and variant != value and VARIANT_SEPARATOR in variant:
        suffix = variant.split(VARIANT_SEPARATOR, 1)[1]
    return {"text": text, "classes": classes, "variant": suffix}


def html_table(
    df: pd.DataFrame,
    columns: Sequence[str],
    headers: Mapping[str, str] | None = None,
    text_columns: Iterable[str] = TEXT_COLUMNS,
    best_within: str | None = None,
    group_by: str | None = None,
) -> Markup:
    """A table of ``columns`` of ``df``: numbers right-aligned, the best value per column
    (within ``best_within`` groups) in bold, a rule where ``group_by`` changes, the
    ``dataset == "all"`` rows set apart."""
    headers = dict(headers or {})
    text_columns = set(text_columns)
    best = _best_values(df, columns, text_columns, best_within) if best_within is not None and len(df) else {}
    head = [{"text": headers.get(c, c), "help": METRIC_HELP.get(c, c), "txt": c in text_columns} for c in columns]
    rows, previous_group = [], None
    for record in df.to_dict("records"):
        classes = []
        if group_by is not None:
            if previous_group is not None and record[group_by] != previous_group:
                classes.append("group-start")
            previous_group = record[group_by]
        if record.get("dataset") == "all":
            classes.append("all")
        rows.append({"classes": classes,
                     "cells": [_cell(record, c, text_columns, best_within, best) for c in columns]})
    return render("table.html.j2", head=head, rows=rows)


def figure_html(path: Path, alt: str, caption: str | None = None, width: int | None = None) -> Markup:
    """A ``<figure>`` embedding the PNG at ``path`` as base64 (the page needs no other file);
    ``caption`` is text."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return render("figure.html.j2", data=data, alt=alt, caption=caption, width=width)


def write_page(out_dir: Path, title: str, sections: Sequence[Markup]) -> Path:
    """``out_dir/index.html``: a self-contained page (inline CSS) of ``sections``, written
    atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    atomic_write_text(path, render("page.html.j2", title=title, sections=sections))
    return path
