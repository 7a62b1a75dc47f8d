"""The seed-000 ``dataset_index.csv``: one row per track, and its one reader.

Columns ``dataset,audio_path,beats_path[,has_downbeats][,group]``; paths are relative to the
CSV's folder (absolute ones are kept). Rows with the same ``group`` (e.g. two mixes or edits
of one piece) always share a split and a cross-validation fold (:mod:`beatgrid.data.folds`).
:func:`beatgrid.data.index.scan_index_csv` indexes the rows, and the workflow follows the
files they list (``dataset_sources_digest``) without reading any audio, so this module
imports neither the audio stack nor the annotations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

__all__ = ["REQUIRED_COLUMNS", "DatasetIndexRow", "read_dataset_index"]

#: Columns every ``dataset_index.csv`` has; ``has_downbeats`` and ``group`` are optional.
REQUIRED_COLUMNS = ("dataset", "audio_path", "beats_path")


@dataclass(frozen=True)
class DatasetIndexRow:
    """One row, its cells stripped of surrounding spaces.

    ``audio_path`` and ``beats_path`` are resolved against the CSV's folder (POSIX), ``""``
    where the cell is empty; ``dataset``, ``has_downbeats`` and ``group`` are ``""`` where empty or absent.
    ``line`` is the row's line in the file (the header is line 1).
    """

    line: int
    dataset: str
    audio_path: str
    beats_path: str
    has_downbeats: str
    group: str = ""


def read_dataset_index(path: str | os.PathLike) -> list[DatasetIndexRow]:
    """The rows of the ``dataset_index.csv`` at ``path`` (``~`` expanded).

    Raises:
        FileNotFoundError: the CSV does not exist.
        ValueError: it cannot be parsed or lacks a column of :data:`REQUIRED_COLUMNS`
            (the message names the file).
    """
    csv_path = Path(os.path.expanduser(os.fspath(path)))
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"index CSV {str(csv_path)!r} does not exist (relative paths are relative to {os.getcwd()})"
        )
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot parse {csv_path}: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{csv_path} lacks column(s) {', '.join(missing)} (has {', '.join(table.columns)})")
    root = csv_path.parent.as_posix()

    def resolve(value: str) -> str:
        value = value.strip()
        return _posix_path(value if value.startswith("/") else f"{root}/{value}") if value else ""

    flags = table["has_downbeats"] if "has_downbeats" in table.columns else [""] * len(table)
    groups = table["group"] if "group" in table.columns else [""] * len(table)
    return [
        DatasetIndexRow(line, dataset.strip(), resolve(audio), resolve(beats), str(flag).strip(), str(group).strip())
        for line, dataset, audio, beats, flag, group in zip(
            range(2, len(table) + 2), table["dataset"], table["audio_path"], table["beats_path"], flags, groups
        )
    ]


def _posix_path(path: str) -> str:
    """``PurePosixPath(path).as_posix()`` without the object: empty and ``.`` parts dropped,
    ``..`` kept. The workflow reads 20,000 rows while Snakemake plans, where building the
    paths took most of a quarter of a second."""
    if path.startswith("//") and not path.startswith("///"):
        return str(PurePosixPath(path))  # POSIX keeps exactly two leading slashes; pathlib too
    parts = [part for part in path.split("/") if part not in ("", ".")]
    prefix = "/" if path.startswith("/") else ""
    return prefix + "/".join(parts) if parts else prefix or "."
