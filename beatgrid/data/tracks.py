"""``tracks.csv``, the index of every usable track: its columns, reader and writer.

Built by :func:`beatgrid.data.index.build_index` (``results/index/tracks.csv``) and read by
every later stage through :func:`read_index`, which restores the types a plain CSV read
loses (``shard`` stays a ``"%03d"`` string, ``has_downbeats`` a bool). This module imports
pandas only, so jobs without the audio libraries (training) read the index too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from beatgrid.io import atomic_write

__all__ = ["TRACK_COLUMNS", "EXTRA_COLUMNS", "REJECTED_COLUMNS", "TRUE_WORDS", "FALSE_WORDS",
           "truthy", "read_index", "write_index", "track_groups"]

#: Columns every ``tracks.csv`` has, in order.
TRACK_COLUMNS = [
    "track_id",
    "dataset",
    "audio_path",
    "annotation_path",
    "annotation_format",
    "has_downbeats",
    "duration_s",
    "split",
    "shard",
]
#: Columns the index adds after :data:`TRACK_COLUMNS`: ``n_beats``, ``bpm`` (median tempo
#: of the annotation), ``beats_per_bar``, ``source`` (the config dataset of the row),
#: ``group`` (tracks of one group share a split and a fold; empty: the track alone).
EXTRA_COLUMNS = ["n_beats", "bpm", "beats_per_bar", "source", "group"]
#: Columns of ``rejected.csv``: every input that was not indexed, and why.
REJECTED_COLUMNS = ["dataset", "audio_path", "annotation_path", "reason"]

#: Words a yes/no column (``has_downbeats``) may hold, in lower case.
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f"})


def truthy(value: Any) -> bool:
    """A yes/no cell as a bool: a bool or number as Python reads it, a string when it is
    one of :data:`TRUE_WORDS`; None, NaN and empty cells are False."""
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def _atomic_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def write_index(
    tracks: pd.DataFrame,
    rejected: pd.DataFrame,
    tracks_csv: str | os.PathLike,
    rejected_csv: str | os.PathLike,
) -> None:
    """Write both tables as CSV (each to a temporary name, renamed on success)."""
    _atomic_csv(tracks, tracks_csv)
    _atomic_csv(rejected, rejected_csv)


def read_index(tracks_csv: str | os.PathLike, required: Sequence[str] = TRACK_COLUMNS) -> pd.DataFrame:
    """Read ``tracks.csv`` back with the right types (``shard`` stays a ``"%03d"`` string,
    ``has_downbeats`` bool, ``duration_s`` float); ValueError naming the file when it lacks
    a ``required`` column (a training track table needs only ``track_id`` and ``split``)."""
    tracks = pd.read_csv(
        tracks_csv,
        dtype={"track_id": str, "dataset": str, "audio_path": str, "annotation_path": str,
               "annotation_format": str, "split": str, "shard": str, "source": str, "group": str},
        keep_default_na=False,
        na_values={"bpm": [""], "beats_per_bar": [""], "n_beats": [""]},
    )  # fmt: skip
    missing = [c for c in required if c not in tracks.columns]
    if missing:
        raise ValueError(f"{tracks_csv}: not a tracks index, lacks {', '.join(missing)}")
    if "has_downbeats" in tracks:
        tracks["has_downbeats"] = tracks["has_downbeats"].map(truthy).astype(bool)
    if "duration_s" in tracks:
        tracks["duration_s"] = tracks["duration_s"].astype(float)
    if "beats_per_bar" in tracks:
        tracks["beats_per_bar"] = tracks["beats_per_bar"].astype("Int64")
    return tracks


def track_groups(tracks: pd.DataFrame) -> dict[str, str]:
    """``{track_id: group}`` of the tracks that have a ``group`` (none for a table without
    the column), as :func:`beatgrid.data.folds.assign_folds` takes it."""
    if "group" not in tracks:
        return {}
    groups = tracks["group"].fillna("").astype(str).str.strip()
    return dict(zip(tracks.loc[groups != "", "track_id"], groups[groups != ""]))
