"""Batch prediction (``beatgrid predict``): audio files and folders in, beats and beatgrids out.

Inputs are files and folders (searched recursively for :data:`beatgrid.audio.AUDIO_EXTENSIONS`).
Outputs mirror the inputs' paths relative to their common folder under ``out_dir``, named
after the audio file's stem as DESIGN.md's ``<name>.beats`` / ``<name>.json``::

    out/a/song.beats   time<TAB>position per beat (1 = downbeat)
    out/a/song.json    label JSON: fileName, bpm, downbeatOffset, duration, beatsPerBar, confidence
    out/a/song.jams    JAMS beat + tempo annotations
    out/a/song.activations.npz   [T, 2] activations (--save-activations)
    out/rekordbox.xml  one Rekordbox collection with every track's beatgrid

Where two inputs of one call share a stem in one folder (``a/song.wav`` and ``a/song.mp3``),
both keep their extension in the name (``a/song.wav.json``, ``a/song.mp3.json``), so no
output is ever overwritten by another input's.

A file that fails is reported (one line) and skipped; the others are processed. The
networks are loaded once, before any audio is decoded. Every file is written atomically,
so ``skip_existing`` never trusts a half-written one.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputFileError, UsageError
from .methods import DEFAULT_METHOD, get_method

if TYPE_CHECKING:
    from .analysis import Models

log = logging.getLogger(__name__)

__all__ = ["ACTIVATIONS_SUFFIX", "DEFAULT_FORMATS", "FORMATS", "REKORDBOX_FILE", "BatchResult", "Job",
           "collect_jobs", "parse_formats", "predict_paths"]

#: Output formats: per-file ``.beats``, ``.json``, ``.jams``, and one Rekordbox XML per output folder.
FORMATS = ("beats", "json", "rekordbox", "jams")
DEFAULT_FORMATS = ("beats", "json")
#: The Rekordbox collection's file name in the output folder.
REKORDBOX_FILE = "rekordbox.xml"
#: Suffix of the saved activations (after the audio file's name).
ACTIVATIONS_SUFFIX = ".activations.npz"
_SUFFIXES = {"beats": ".beats", "json": ".json", "jams": ".jams"}


@dataclass(frozen=True)
class Job:
    """One audio file and the base of its outputs (``name`` + suffix, relative to the output folder)."""

    audio: Path
    name: str  #: posix path relative to the output folder: the stem, or the whole name where stems collide

    def output(self, out_dir: str | os.PathLike, suffix: str) -> Path:
        return Path(out_dir) / f"{self.name}{suffix}"


@dataclass
class BatchResult:
    """What a batch did: files written, skipped (outputs existed) and failed (with the reason)."""

    written: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  #: (input, one-line message)

    @property
    def n_inputs(self) -> int:
        return len(self.written) + len(self.skipped) + len(self.failed)


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"beats,json"`` -> ``("beats", "json")``; raises :class:`UsageError` on an unknown format."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise UsageError(f"unknown output format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(names))


def collect_jobs(inputs: Iterable[str | os.PathLike]) -> tuple[list[Job], list[tuple[str, str]]]:
    """The audio files of ``inputs`` (files as given, folders searched recursively) with their
    output names, and the inputs that do not exist, as ``(input, message)``.

    Output names are paths relative to the common folder of the inputs (a folder input
    counts itself, a file its parent) without the audio extension; files whose names would
    then collide keep their extension, so different files never share a name.
    """
    from .audio import is_audio_name
    from .data.index import walk_files

    anchors: list[str] = []
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = walk_files(path, is_audio_name)
            if not found:
                log.warning("%s: no audio files in this folder", path)
            anchors.append(os.path.abspath(path))
            files += found
        elif path.exists():
            anchors.append(os.path.dirname(os.path.abspath(path)))
            files.append(path)
        else:
            missing.append((str(path), f"{path}: no such file or folder"))
    base = os.path.commonpath(anchors) if anchors else ""
    relative = {os.path.abspath(path): (path, Path(os.path.relpath(os.path.abspath(path), base)))
                for path in files}
    stem_count = Counter(rel.with_suffix("").as_posix() for _, rel in relative.values())
    jobs = [Job(path, rel.with_suffix("").as_posix() if stem_count[rel.with_suffix("").as_posix()] == 1
                else rel.as_posix())
            for path, rel in relative.values()]
    return jobs, missing


def _job_outputs(job: Job, out_dir: Path, formats: Sequence[str], save_activations: bool) -> list[Path]:
    outputs = [job.output(out_dir, _SUFFIXES[f]) for f in formats if f in _SUFFIXES]
    if save_activations:
        outputs.append(job.output(out_dir, ACTIVATIONS_SUFFIX))
    return outputs


def _write_outputs(job: Job, analysis: Any, out_dir: Path, formats: Sequence[str], save_activations: bool) -> None:
    from .annotations import write_beats_file
    from .predictions import write_prediction_json

    if "beats" in formats:
        write_beats_file(job.output(out_dir, ".beats"), analysis.beats, analysis.beat_positions)
    if "json" in formats:
        write_prediction_json(job.output(out_dir, ".json"), analysis.label)
    if "jams" in formats:
        from .export.jams import write_jams

        write_jams(job.output(out_dir, ".jams"), analysis, title=job.audio.name)
    if save_activations:
        from .activations import save_track_activations

        save_track_activations(job.output(out_dir, ACTIVATIONS_SUFFIX), analysis.activations, analysis.fps,
                               analysis.pos_weight)


def _failure(job: Job, error: Exception) -> str:
    """One line naming the file and the problem."""
    if isinstance(error, InputFileError):
        return str(error)
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{job.audio}: {text}" if str(job.audio) in text else f"{job.audio}: {type(error).__name__}: {text}"


def predict_paths(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    models: Models | str | os.PathLike | None = None,
    method: str = DEFAULT_METHOD,
    formats: Sequence[str] = DEFAULT_FORMATS,
    device: str = "auto",
    skip_existing: bool = False,
    save_activations: bool = False,
    progress: bool | None = None,
    debug: bool = False,
    **settings: Any,
) -> BatchResult:
    """Analyse every audio file of ``inputs`` and write the ``formats`` under ``out_dir``.

    ``models``: loaded :class:`~beatgrid.analysis.Models`, or what
    :func:`beatgrid.analysis.load_models` takes (None: the shipped model).
    ``settings``: ``bpm_min``, ``bpm_max``, ``peak_threshold``, ``online_threshold``,
    ``min_confidence`` of :func:`beatgrid.analysis.analyze`. ``progress``: a progress bar
    (None: when stderr is a terminal). ``debug``: log a failing file's traceback.

    Raises (before any audio is decoded): :class:`UsageError` for unusable settings or no
    input, and the model loader's errors (missing model, unavailable device).
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .analysis import Models, analyze, check_settings, load_models

    formats = parse_formats(formats)
    check_settings(method, settings.get("bpm_min", 60.0), settings.get("bpm_max", 200.0),
                   settings.get("min_confidence", 0.0))
    out_dir = Path(out_dir)
    # a wrong model or device stops here, before any input is read
    loaded = models if isinstance(models, Models) else load_models(models, method, device)
    if get_method(method).source == "ltm" and loaded.ltm is None:
        raise UsageError(f"{method} needs the LTM, and {loaded.folder} has no ltm/model.pt")
    jobs, missing = collect_jobs(inputs)
    if not jobs and not missing:
        raise UsageError("no audio files among the inputs")
    result = BatchResult(failed=list(missing))
    for _, message in missing:
        log.error("%s", message)

    rekordbox_path = out_dir / REKORDBOX_FILE
    rekordbox: dict[str, Any] | None = None
    if "rekordbox" in formats:
        from .export.rekordbox import location_uri, read_rekordbox_tracks, track_element, write_rekordbox_xml

        try:
            rekordbox = read_rekordbox_tracks(rekordbox_path)  # tracks of earlier calls stay in the file
        except ValueError as exc:
            raise UsageError(f"{exc}; move it away or choose another --out") from None

    def done(job: Job) -> bool:
        if any(not p.is_file() for p in _job_outputs(job, out_dir, formats, save_activations)):
            return False
        return rekordbox is None or location_uri(job.audio) in rekordbox

    todo = [job for job in jobs if not (skip_existing and done(job))]
    result.skipped = [job for job in jobs if job not in todo]
    if result.skipped:
        log.info("skipping %d of %d files whose outputs exist", len(result.skipped), len(jobs))
    try:
        with logging_redirect_tqdm():
            for job in tqdm(todo, desc="beatgrid predict", unit="file",
                            disable=None if progress is None else not progress):  # None: only on a terminal
                try:
                    analysis = analyze(job.audio, models=loaded, method=method, **settings)
                    _write_outputs(job, analysis, out_dir, formats, save_activations)
                except Exception as error:  # one bad file must not stop the batch
                    message = _failure(job, error)
                    result.failed.append((str(job.audio), message))
                    log.error("%s", message, exc_info=debug)
                    continue
                if rekordbox is not None:
                    rekordbox[location_uri(job.audio)] = track_element(job.audio, analysis.duration_s,
                                                                       analysis.beatgrid)
                result.written.append(job)
                log.debug("%s: %d beats, %s", job.audio, len(analysis.beats),
                          f"{analysis.beatgrid.bpm:.2f} BPM" if analysis.beatgrid else analysis.reason)
    finally:  # also on Ctrl-C: the collection keeps every track analysed so far
        if rekordbox is not None and (result.written or not rekordbox_path.exists()):
            write_rekordbox_xml(rekordbox_path, rekordbox.values())
    return result
