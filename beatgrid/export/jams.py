"""JAMS (JSON Annotated Music Specification): beats and tempo of an analysis.

One file per recording with two annotations, in the namespaces the ``jams`` package defines:

- ``beat``: one observation per beat (``time`` s, ``duration`` 0, ``value`` its position in
  the bar, 1 = downbeat, or null when unknown);
- ``tempo``: the beatgrid's tempo over the whole recording (``value`` BPM, ``confidence`` the
  grid's), absent when there is no tempo to report.

Written with the standard library (the runtime needs no ``jams``); ``jams.load`` reads and
validates it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import atomic_write_text

if TYPE_CHECKING:
    from ..analysis import Analysis

__all__ = ["JAMS_VERSION", "analysis_jams", "write_jams"]

#: The JAMS schema version the files follow.
JAMS_VERSION = "0.3.5"


def _annotation(namespace: str, duration_s: float, data: list[dict[str, Any]], tools: str) -> dict[str, Any]:
    return {
        "annotation_metadata": {
            "curator": {"name": "", "email": ""}, "annotator": {}, "version": "", "corpus": "",
            "annotation_tools": tools, "annotation_rules": "", "validation": "",
            "data_source": "machine prediction",
        },
        "namespace": namespace,
        "data": data,
        "sandbox": {},
        "time": 0.0,
        "duration": duration_s,
    }


def analysis_jams(analysis: Analysis, title: str = "") -> dict[str, Any]:
    """The JAMS document (a dict) of ``analysis``; ``title`` names the recording."""
    from .. import __version__

    tools = f"beatgrid {__version__} ({analysis.method})"
    duration_s = round(float(analysis.duration_s), 6)
    beats = [{"time": round(float(t), 6), "duration": 0.0, "value": int(p) if p > 0 else None,
              "confidence": None} for t, p in zip(analysis.beats, analysis.beat_positions)]
    annotations = [_annotation("beat", duration_s, beats, tools)]
    if analysis.beatgrid is not None:
        grid = analysis.beatgrid
        tempo = [{"time": 0.0, "duration": duration_s, "value": round(grid.bpm, 4),
                  "confidence": round(float(grid.confidence), 4)}]
        annotations.append(_annotation("tempo", duration_s, tempo, tools + " beatgrid"))
    sandbox: dict[str, Any] = {}
    if analysis.reason:
        sandbox["reason"] = analysis.reason
    return {
        "annotations": annotations,
        "file_metadata": {"title": title, "artist": "", "release": "", "duration": duration_s,
                          "identifiers": {}, "jams_version": JAMS_VERSION},
        "sandbox": sandbox,
    }


def write_jams(path: str | os.PathLike, analysis: Analysis, title: str = "") -> Path:
    """Write :func:`analysis_jams` to ``path`` (``.jams``) atomically."""
    return atomic_write_text(path, json.dumps(analysis_jams(analysis, title), indent=1) + "\n")
