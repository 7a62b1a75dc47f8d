"""Prediction files, what every method (and reference tracker) writes per track: ``<name>.beats``
and ``<name>.json``; their writer and readers.

``<name>.beats``: ``time<TAB>position`` per beat (seconds; 1 = downbeat, 0 = unknown; the
annotation format of :mod:`beatgrid.annotations`, a beat-only file without positions).
``<name>.json``: the label JSON (``fileName``, ``bpm``, ``downbeatOffset``, ``duration``,
``beatsPerBar``, ``confidence``, ...; :func:`beatgrid.inference.beats_label`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .annotations import parse_beats_text, write_beats_file
from .io import atomic_write_text

__all__ = ["write_prediction_files", "write_prediction_json", "read_prediction_beats", "read_prediction_grid"]


def write_prediction_files(out_dir: str | Path, name: str, beat_times: np.ndarray,
                           beat_positions: np.ndarray | None, label: dict[str, Any]) -> list[Path]:
    """Write ``<name>.beats`` (positions left out when None) and ``<name>.json`` into
    ``out_dir`` (created if needed), each atomically; returns both paths."""
    out_dir = Path(out_dir)
    beats_path, json_path = out_dir / f"{name}.beats", out_dir / f"{name}.json"
    write_beats_file(beats_path, beat_times, beat_positions)
    write_prediction_json(json_path, label)
    return [beats_path, json_path]


def write_prediction_json(path: str | Path, label: dict[str, Any]) -> None:
    """Write a prediction's label JSON (indented, one trailing newline), atomically."""
    atomic_write_text(path, json.dumps(label, indent=2) + "\n")


def read_prediction_beats(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a prediction ``.beats`` file: ``time[<TAB>position]`` per line.

    Returns:
        (beat_times in seconds, positions) where positions is an int array (1 = downbeat)
        or ``None`` when the file has no position column or every position is 0
        ("no downbeat estimate"). An empty file gives an empty array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is malformed (the message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file not found: {path}")
    beat_times, pos, _ = parse_beats_text(path.read_text(), path, "prediction")
    if not np.all(np.isfinite(beat_times)):
        raise ValueError(f"{path}: beat times contain NaN or inf")
    if np.any(np.diff(beat_times) < 0):
        raise ValueError(f"{path}: beat times are not in ascending order")
    if pos is None:
        return beat_times, None
    if np.any(pos != np.round(pos)) or np.any(pos < 0):
        raise ValueError(f"{path}: positions must be non-negative integers")
    pos = pos.astype(np.int64)
    return beat_times, (pos if np.any(pos > 0) else None)


def read_prediction_grid(path: str | Path) -> dict | None:
    """Read a prediction JSON (beatgrid label format); ``None`` when the file does not exist.

    Raises:
        ValueError: the file is not a JSON object or its ``bpm`` is not a positive number.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        grid = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(grid, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(grid).__name__}")
    if "bpm" in grid and grid["bpm"] is not None:
        try:
            bpm = float(grid["bpm"])
        except (TypeError, ValueError):
            bpm = math.nan
        if not (math.isfinite(bpm) and bpm > 0):
            raise ValueError(f"{path}: 'bpm' must be a positive number, got {grid['bpm']!r}")
    return grid
