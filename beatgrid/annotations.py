"""Beat annotations: `.beats` text files, the constant-BPM label JSON, and JAMS.

Three formats are read (the first two also written here; JAMS by :mod:`beatgrid.export.jams`):

``.beats`` (Ballroom, GTZAN, Beat This! annotations; also ``.txt``: Harmonix, SMC, Hainsworth)
    one beat per line, ``time [position [bar]]``: time in seconds, position in the bar
    (1 = downbeat), and Harmonix's bar number (checked, then not used), separated by
    whitespace or a tab. Positions may be written as floats (``1.0``); files without a
    second column have beats only. Blank lines and ``#`` comments are ignored.

label JSON (``*.labels.json``, seed 001; also the beatgrid predictions)
    ``{"fileName": ..., "bpm": 128.0, "duration": 30.0, "downbeatOffset": 0.42,
    "beatsPerBar": 4, "confidence": 0.9}``; ``bpm`` is required, the rest optional.
    The grid runs through ``downbeatOffset`` (a downbeat) with period ``60 / bpm``,
    backwards to t >= 0 and forwards to the end of the audio.

JAMS (``*.jams``, the MIR community's annotation format; mirdata and jams write it)
    the first annotation in the ``beat`` namespace (``value``: position in the bar, 1 =
    downbeat, or null for every beat when the bar is not annotated), else the first in
    ``beat_position`` (``value.position``); observations as a list (JAMS 0.3) or as dense
    arrays (JAMS 0.2). Other annotations (tempo, chords, further annotators) are ignored.

Every problem with a file raises :class:`AnnotationError`, naming the file and the
problem (and the line for text files).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputFileError
from .io import atomic_write_text

__all__ = [
    "END_TOLERANCE_S",
    "BEATS_FORMAT",
    "LABEL_JSON_FORMAT",
    "JAMS_FORMAT",
    "TEXT_SUFFIX",
    "ANNOTATION_SUFFIXES",
    "annotation_format_of",
    "AnnotationError",
    "Annotation",
    "LabelGrid",
    "parse_beats_text",
    "read_beats_file",
    "write_beats_file",
    "read_label_json",
    "write_label_json",
    "label_grid_to_annotation",
    "read_jams_beats",
    "read_annotation",
    "validate_annotation",
]

#: Beats up to this many seconds after the last audio sample are accepted. Decoders
#: disagree on the length of compressed audio by up to ~50 ms (mp3 encoder delay and
#: padding) and annotators mark a last beat right at the end of a clip; 0.1 s is
#: five frames at 50 fps. Consumers that map beats to frames must drop beats whose
#: frame falls outside the spectrogram.
END_TOLERANCE_S = 0.1

#: ``annotation_format`` values used in the dataset index.
BEATS_FORMAT = "beats"
LABEL_JSON_FORMAT = "label_json"
JAMS_FORMAT = "jams"
#: ``.txt``: the ``.beats`` text as Harmonix, SMC and Hainsworth name it (a suffix that other files share too).
TEXT_SUFFIX = ".txt"
#: Annotation file suffixes that a folder of beat annotations (``beats_dir``) may hold, and their format.
ANNOTATION_SUFFIXES = {".beats": BEATS_FORMAT, ".jams": JAMS_FORMAT, TEXT_SUFFIX: BEATS_FORMAT}

#: A label JSON ``bpm`` above this is treated as corrupt (it would also make the
#: expanded grid absurdly dense).
MAX_LABEL_BPM = 1000.0


class AnnotationError(InputFileError):
    """An annotation file is missing, empty, malformed or inconsistent with its audio.

    ``path`` is the file, ``problem`` a short human-readable description that can
    be shown on its own (e.g. ``"annotation unsorted at line 12: ..."``).
    """


@dataclass
class Annotation:
    """Beat times in seconds and, when annotated, their position in the bar (1 = downbeat)."""

    beat_times: np.ndarray  #: float64 [n_beats], seconds
    beat_positions: np.ndarray | None = None  #: int64 [n_beats], 1-based, or None

    def __post_init__(self) -> None:
        self.beat_times = np.asarray(self.beat_times, dtype=np.float64).reshape(-1)
        if self.beat_positions is not None:
            positions = np.asarray(self.beat_positions).reshape(-1)
            if positions.shape != self.beat_times.shape:
                raise ValueError(
                    f"beat_positions has {positions.size} entries for {self.beat_times.size} beats"
                )
            if positions.size and not np.array_equal(positions, np.round(positions)):
                raise ValueError("beat_positions must be whole numbers")
            self.beat_positions = positions.astype(np.int64)

    @property
    def has_downbeats(self) -> bool:
        """True when bar positions are annotated and at least one beat is a downbeat."""
        return self.beat_positions is not None and bool(np.any(self.beat_positions == 1))

    @property
    def downbeat_times(self) -> np.ndarray:
        """Times (s) of the beats at position 1; empty when positions are not annotated."""
        if self.beat_positions is None:
            return np.zeros(0, dtype=np.float64)
        return self.beat_times[self.beat_positions == 1]

    @property
    def beats_per_bar(self) -> int | None:
        """Most common bar length (the position before each downbeat), else the highest
        position; None without positions."""
        if self.beat_positions is None or self.beat_positions.size == 0:
            return None
        positions = self.beat_positions
        bar_ends = positions[:-1][positions[1:] == 1]
        if bar_ends.size == 0:
            return int(positions.max())
        values, counts = np.unique(bar_ends, return_counts=True)
        return int(values[np.argmax(counts)])

    @property
    def median_bpm(self) -> float:
        """Tempo from the median inter-beat interval (BPM); NaN with fewer than 2 beats."""
        if self.beat_times.size < 2:
            return float("nan")
        return float(60.0 / np.median(np.diff(self.beat_times)))


@dataclass
class LabelGrid:
    """A constant-tempo beatgrid, as in the seed-001 label JSON."""

    bpm: float  #: beats per minute, > 0
    duration_s: float | None  #: track length in seconds (None when the JSON omits it)
    downbeat_offset_s: float = 0.0  #: time of a downbeat in seconds (``downbeatOffset``)
    file_name: str | None = None  #: ``fileName``, the audio file the labels belong to
    beats_per_bar: int = 4  #: ``beatsPerBar``
    confidence: float | None = None  #: ``confidence`` (written by predictions; optional)

    @property
    def beat_period_s(self) -> float:
        return 60.0 / self.bpm


# --------------------------------------------------------------------------- checks


def _check_times(
    beat_times: np.ndarray, path: str | os.PathLike, line_numbers: list[int] | None = None
) -> None:
    """Reject empty, non-finite, negative, unsorted or duplicate beat times."""

    def where(i: int) -> str:
        return f"line {line_numbers[i]}" if line_numbers is not None else f"beat {i + 1}"

    if beat_times.size == 0:
        raise AnnotationError(path, "annotation is empty (no beats)")
    bad = np.flatnonzero(~np.isfinite(beat_times))
    if bad.size:
        i = int(bad[0])
        raise AnnotationError(path, f"annotation has a non-finite time ({beat_times[i]}) at {where(i)}")
    bad = np.flatnonzero(beat_times < 0)
    if bad.size:
        i = int(bad[0])
        raise AnnotationError(
            path, f"annotation has a negative time ({beat_times[i]:.3f} s) at {where(i)}"
        )
    steps = np.diff(beat_times)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        kind = "duplicate" if steps[i - 1] == 0 else "unsorted"
        raise AnnotationError(
            path,
            f"annotation {kind} at {where(i)}: {beat_times[i]:.3f} s follows "
            f"{beat_times[i - 1]:.3f} s",
        )


def _check_positions(
    positions: np.ndarray, path: str | os.PathLike, line_numbers: list[int] | None = None
) -> None:
    def where(i: int) -> str:
        return f"line {line_numbers[i]}" if line_numbers is not None else f"beat {i + 1}"

    bad = np.flatnonzero(~np.isfinite(positions) | (positions != np.round(positions)))
    if bad.size:
        i = int(bad[0])
        raise AnnotationError(
            path, f"annotation has a bar position that is not a whole number ({positions[i]}) at {where(i)}"
        )
    bad = np.flatnonzero(positions < 1)
    if bad.size:
        i = int(bad[0])
        raise AnnotationError(
            path, f"annotation has a bar position below 1 ({positions[i]:g}) at {where(i)}"
        )


def validate_annotation(
    ann: Annotation, duration_s: float | None, path: str | os.PathLike
) -> None:
    """Check an annotation against its audio.

    Rejects (with :class:`AnnotationError` naming ``path``) empty, non-finite,
    negative, unsorted or duplicate beat times, bar positions that are not whole
    numbers >= 1, and beats later than ``duration_s + END_TOLERANCE_S``. With
    ``duration_s=None`` only the times themselves are checked.
    """
    _check_times(ann.beat_times, path)
    if ann.beat_positions is not None:
        _check_positions(ann.beat_positions.astype(np.float64), path)
    if duration_s is not None:
        if not math.isfinite(duration_s) or duration_s < 0:
            raise AnnotationError(path, f"audio duration {duration_s} s is invalid")
        last = float(ann.beat_times[-1])
        if last > duration_s + END_TOLERANCE_S:
            raise AnnotationError(
                path, f"beat at {last:.2f} s is past the end of the audio ({duration_s:.2f} s)"
            )


# --------------------------------------------------------------------------- .beats


def _read_text(path: Path) -> str:
    if not path.exists():
        raise AnnotationError(path, "annotation file missing")
    if not path.is_file():
        raise AnnotationError(path, "annotation path is not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AnnotationError(path, f"annotation unreadable: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            path, f"annotation unparsable: not a text file (byte {exc.start} is not UTF-8)"
        ) from exc


def parse_beats_text(
    text: str, path: str | os.PathLike, what: str = "annotation"
) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """The columns of a ``.beats`` text (``time [position [bar]]`` per line, ``#`` comments).

    Returns beat times (s, float64), positions (float64, or None for one column) and the line
    number of each beat, unchecked beyond the format: every line has the same number of
    columns (1 to 3), all numeric, and a third column (Harmonix's bar number) holds whole
    numbers that never decrease. Readers check the values (:func:`read_beats_file` for
    annotations, :func:`beatgrid.predictions.read_prediction_beats` for predictions).

    Raises:
        AnnotationError: naming ``path`` and the line; ``what`` names the file's role.
    """
    times: list[float] = []
    positions: list[float] = []
    bars: list[float] = []
    line_numbers: list[int] = []
    n_columns: int | None = None
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        snippet = line.strip()[:40]
        if n_columns is None:
            n_columns = len(fields)
            if n_columns > 3:
                raise AnnotationError(
                    path,
                    f"{what} unparsable at line {line_number}: {n_columns} columns in "
                    f"{snippet!r}, expected 'time [position [bar]]'",
                )
        elif len(fields) != n_columns:
            raise AnnotationError(
                path,
                f"{what} unparsable at line {line_number}: {len(fields)} columns in "
                f"{snippet!r}, but earlier lines have {n_columns}",
            )
        try:
            values = [float(field) for field in fields]
        except ValueError:
            raise AnnotationError(
                path, f"{what} unparsable at line {line_number}: {snippet!r} is not numeric"
            ) from None
        if n_columns == 3:
            bar = values[2]
            if not math.isfinite(bar) or bar != round(bar) or (bars and bar < bars[-1]):
                raise AnnotationError(
                    path, f"{what} unparsable at line {line_number}: bar number {fields[2]!r} is not a whole "
                          f"number at least the previous line's",
                )
            bars.append(bar)
        times.append(values[0])
        if n_columns >= 2:
            positions.append(values[1])
        line_numbers.append(line_number)
    beat_positions = np.asarray(positions, dtype=np.float64) if (n_columns or 0) >= 2 else None
    return np.asarray(times, dtype=np.float64), beat_positions, line_numbers


def read_beats_file(path: str | os.PathLike) -> Annotation:
    """Read a ``.beats`` file (``time [position [bar]]`` per line) into an :class:`Annotation`.

    All lines must have the same number of columns (1: beats only, 2: beats and bar
    positions, 3: and Harmonix's bar numbers). Positions are whole numbers >= 1, written as
    ints or floats (``1.0``).

    Raises:
        AnnotationError: missing, empty, unparsable, non-finite, negative, unsorted
            or duplicate times; malformed positions. The message gives the line.
    """
    path = Path(path)
    beat_times, beat_positions, line_numbers = parse_beats_text(_read_text(path), path)
    _check_times(beat_times, path, line_numbers)
    if beat_positions is not None:
        _check_positions(beat_positions, path, line_numbers)
        return Annotation(beat_times, beat_positions.astype(np.int64))
    return Annotation(beat_times, None)


def write_beats_file(
    path: str | os.PathLike,
    beat_times: np.ndarray,
    beat_positions: np.ndarray | None = None,
) -> None:
    """Write ``time<TAB>position`` lines (times in seconds, 6 decimals); ``time``
    only when ``beat_positions`` is None. Atomic (:func:`beatgrid.io.atomic_write_text`)."""
    beat_times = np.asarray(beat_times, dtype=np.float64).reshape(-1)
    if beat_positions is not None:
        beat_positions = np.asarray(beat_positions).reshape(-1)
        if beat_positions.shape != beat_times.shape:
            raise ValueError(
                f"{len(beat_positions)} positions for {len(beat_times)} beat times ({path})"
            )
        lines = [f"{t:.6f}\t{int(p)}\n" for t, p in zip(beat_times, beat_positions)]
    else:
        lines = [f"{t:.6f}\n" for t in beat_times]
    atomic_write_text(path, "".join(lines))


# --------------------------------------------------------------------------- label JSON


def _number(data: dict, key: str, path: Path, required: bool = False) -> float | None:
    if key not in data or data[key] is None:
        if required:
            raise AnnotationError(path, f"label JSON has no {key!r}")
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, Real):
        raise AnnotationError(path, f"label JSON {key!r} is not a number: {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise AnnotationError(path, f"label JSON {key!r} is not finite: {value}")
    return value


def read_label_json(path: str | os.PathLike) -> LabelGrid:
    """Read a seed-001 label JSON (``bpm`` required; ``duration``, ``downbeatOffset``,
    ``fileName``, ``beatsPerBar``, ``confidence`` optional).

    Raises:
        AnnotationError: missing file, invalid JSON, missing/non-numeric/non-positive
            ``bpm``, negative ``duration``, ``beatsPerBar`` not a positive integer.
    """
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise AnnotationError(path, "annotation is empty (no JSON)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            path, f"annotation unparsable at line {exc.lineno}: invalid JSON ({exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise AnnotationError(path, "annotation unparsable: label JSON is not an object")

    bpm = _number(data, "bpm", path, required=True)
    if bpm <= 0:
        raise AnnotationError(path, f"label JSON bpm {bpm:g} is not positive")
    if bpm > MAX_LABEL_BPM:
        raise AnnotationError(path, f"label JSON bpm {bpm:g} is implausible (> {MAX_LABEL_BPM:g})")
    duration_s = _number(data, "duration", path)
    if duration_s is not None and duration_s <= 0:
        raise AnnotationError(path, f"label JSON duration {duration_s:g} s is not positive")
    offset = _number(data, "downbeatOffset", path)
    beats_per_bar = _number(data, "beatsPerBar", path)
    if beats_per_bar is not None and (beats_per_bar < 1 or beats_per_bar != int(beats_per_bar)):
        raise AnnotationError(
            path, f"label JSON beatsPerBar {beats_per_bar:g} is not a positive integer"
        )
    file_name = data.get("fileName")
    if file_name is not None and not isinstance(file_name, str):
        raise AnnotationError(path, f"label JSON fileName is not a string: {file_name!r}")
    return LabelGrid(
        bpm=bpm,
        duration_s=duration_s,
        downbeat_offset_s=offset if offset is not None else 0.0,
        file_name=file_name or None,
        beats_per_bar=int(beats_per_bar) if beats_per_bar is not None else 4,
        confidence=_number(data, "confidence", path),
    )


def write_label_json(path: str | os.PathLike, grid: LabelGrid) -> None:
    """Write ``grid`` in the label JSON format (``confidence`` only when set), atomically."""
    data: dict[str, object] = {
        "fileName": grid.file_name,
        "bpm": float(grid.bpm),
        "downbeatOffset": float(grid.downbeat_offset_s),
        "duration": None if grid.duration_s is None else float(grid.duration_s),
        "beatsPerBar": int(grid.beats_per_bar),
    }
    if grid.confidence is not None:
        data["confidence"] = float(grid.confidence)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def label_grid_to_annotation(grid: LabelGrid, duration_s: float | None = None) -> Annotation:
    """Expand a constant-tempo grid into beats on ``[0, duration_s)``.

    Beats are ``downbeat_offset_s + k * 60 / bpm`` for every integer k that lands in
    ``[0, duration_s)``; the beat at the offset has position 1 and positions count
    ``1..beats_per_bar`` from there, also backwards. ``duration_s`` (seconds, e.g. the
    audio's length) overrides ``grid.duration_s``.

    Raises:
        ValueError: no duration is known, or the grid's bpm/beats_per_bar is invalid.
    """
    duration = grid.duration_s if duration_s is None else duration_s
    if duration is None:
        raise ValueError(f"no duration to expand the grid of {grid.file_name or 'a label'} to")
    if not (math.isfinite(grid.bpm) and grid.bpm > 0):
        raise ValueError(f"bpm must be positive, got {grid.bpm}")
    if grid.beats_per_bar < 1:
        raise ValueError(f"beats_per_bar must be >= 1, got {grid.beats_per_bar}")
    period = 60.0 / grid.bpm
    offset = float(grid.downbeat_offset_s)
    eps = 1e-9  # absorbs rounding so a beat exactly at 0 s or at the offset is kept
    k_first = math.ceil((0.0 - offset) / period - eps)
    k_last = math.ceil((duration - offset) / period - eps) - 1
    k = np.arange(k_first, max(k_last, k_first - 1) + 1, dtype=np.int64)
    times = np.maximum(offset + k * period, 0.0)
    keep = times < duration
    k, times = k[keep], times[keep]
    positions = np.mod(k, grid.beats_per_bar) + 1
    return Annotation(times, positions)


# --------------------------------------------------------------------------- JAMS

#: JAMS namespaces read as beats, in order of preference.
JAMS_BEAT_NAMESPACES = ("beat", "beat_position")


def _jams_observations(data: Any, path: Path) -> list[tuple[Any, Any]]:
    """``(time, value)`` of a JAMS annotation's ``data``: a list of observations or dense arrays."""
    if isinstance(data, list) and all(isinstance(o, dict) and "time" in o for o in data):
        return [(o["time"], o.get("value")) for o in data]
    if isinstance(data, dict) and isinstance(data.get("time"), list):
        values = data.get("value")
        values = values if isinstance(values, list) else [None] * len(data["time"])
        if len(values) != len(data["time"]):
            raise AnnotationError(path, f"JAMS beat annotation has {len(data['time'])} times and {len(values)} values")
        return list(zip(data["time"], values))
    raise AnnotationError(path, "JAMS beat annotation's 'data' is neither a list of observations nor dense arrays")


def read_jams_beats(path: str | os.PathLike) -> Annotation:
    """Read the beats of a JAMS file (see the module docstring for which annotation).

    Raises:
        AnnotationError: missing, not JSON, no beat annotation, a time that is not a number,
            positions given for some beats only, and every check of :func:`read_beats_file`.
    """
    path = Path(path)
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"JAMS unparsable: {exc.msg} at line {exc.lineno}") from exc
    annotations = document.get("annotations") if isinstance(document, dict) else None
    if not isinstance(annotations, list):
        raise AnnotationError(path, "JAMS file has no 'annotations' list")
    by_namespace = {}
    for annotation in annotations:
        if isinstance(annotation, dict) and annotation.get("namespace") in JAMS_BEAT_NAMESPACES:
            by_namespace.setdefault(annotation["namespace"], annotation)
    found = next((by_namespace[n] for n in JAMS_BEAT_NAMESPACES if n in by_namespace), None)
    if found is None:
        namespaces = sorted({str(a.get("namespace")) for a in annotations if isinstance(a, dict)})
        raise AnnotationError(path, f"JAMS file has no beat annotation (namespace 'beat' or 'beat_position'); "
                                    f"it has {', '.join(namespaces) or 'none'}")
    observations = sorted(_jams_observations(found.get("data"), path), key=lambda o: _jams_time(o[0], path))
    times = np.array([_jams_time(t, path) for t, _ in observations], dtype=np.float64)
    if found["namespace"] == "beat_position":
        values = [v.get("position") if isinstance(v, dict) else None for _, v in observations]
    else:
        values = [v for _, v in observations]
    _check_times(times, path)
    numbered = [v is not None for v in values]
    if not any(numbered):
        return Annotation(times, None)
    if not all(numbered):
        i = numbered.index(False)
        raise AnnotationError(path, f"JAMS beat {i + 1} ({times[i]:.3f} s) has no bar position while others have")
    if not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        i = next(i for i, v in enumerate(values) if not isinstance(v, Real) or isinstance(v, bool))
        raise AnnotationError(path, f"JAMS beat {i + 1} has a bar position that is not a number: {values[i]!r}")
    positions = np.asarray(values, dtype=np.float64)
    _check_positions(positions, path)
    return Annotation(times, positions.astype(np.int64))


def _jams_time(value: Any, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise AnnotationError(path, f"JAMS beat time is not a number: {value!r}")
    return float(value)


def annotation_format_of(path: str | os.PathLike) -> str:
    """The ``annotation_format`` of an annotation file, from its suffix: ``.json`` is a
    label JSON, ``.jams`` JAMS, anything else ``.beats`` text."""
    suffix = Path(path).suffix.lower()
    return LABEL_JSON_FORMAT if suffix == ".json" else ANNOTATION_SUFFIXES.get(suffix, BEATS_FORMAT)


def read_annotation(
    path: str | os.PathLike, annotation_format: str, duration_s: float | None = None
) -> Annotation:
    """Read an annotation in the index's ``annotation_format`` (``"beats"``,
    ``"label_json"`` or ``"jams"``); label grids are expanded to ``duration_s`` (else their own
    ``duration``).

    Raises:
        AnnotationError: as the readers; also a label JSON without any duration.
        ValueError: unknown ``annotation_format``.
    """
    if annotation_format == BEATS_FORMAT:
        return read_beats_file(path)
    if annotation_format == JAMS_FORMAT:
        return read_jams_beats(path)
    if annotation_format == LABEL_JSON_FORMAT:
        grid = read_label_json(path)
        if duration_s is None and grid.duration_s is None:
            raise AnnotationError(path, "label JSON has no 'duration' and no audio duration is given")
        return label_grid_to_annotation(grid, duration_s)
    raise ValueError(f"unknown annotation_format {annotation_format!r} for {path}")
