"""Peer beat trackers from installed libraries, evaluated beside beatgrid's methods.

Not to be confused with :class:`beatgrid.evaluation.Reference`, the ground truth. The workflow
keeps its historical names for them: the config key ``evaluation.reference_trackers``, the
rules ``reference_shard``/``reference_tracker`` and the folder ``results/reference/``.

The peer is librosa's dynamic-programming beat tracker (Ellis 2007) with its default
settings, so every number in the report has an independent baseline beside it. It
estimates beats and a global tempo, but neither downbeats nor a beatgrid: its ``.beats``
files have no position column (the evaluation scores ``downbeat_f`` as NaN, not 0) and
its JSON holds ``bpm`` without ``downbeatOffset`` (no ``grid_*`` metrics).
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from beatgrid.audio import AudioError, load_audio
from beatgrid.predictions import write_prediction_files

log = logging.getLogger(__name__)

__all__ = ["PEER_TRACKERS", "librosa_beats", "write_peer_predictions", "gather_predictions"]


def librosa_beats(audio_path: str | Path, sr: int = 22050) -> tuple[np.ndarray, float]:
    """Track beats with ``librosa.beat.beat_track`` (default settings).

    Args:
        audio_path: audio file (any format :func:`beatgrid.audio.load_audio` reads).
        sr: analysis sample rate in Hz (librosa's default 22050).

    Returns:
        (beat_times in seconds, tempo in BPM; NaN when librosa finds no tempo).
    """
    import librosa

    audio = load_audio(audio_path, sr)
    tempo, beat_times = librosa.beat.beat_track(y=audio, sr=sr, units="time")
    bpm = float(np.atleast_1d(tempo)[0]) if np.size(tempo) else math.nan
    if not bpm > 0:
        bpm = math.nan
    return np.asarray(beat_times, dtype=np.float64), bpm


#: Reference tracker name -> function ``(audio_path, sr) -> (beat_times, bpm)``.
PEER_TRACKERS: dict[str, Callable[[str | Path, int], tuple[np.ndarray, float]]] = {
    "librosa": librosa_beats,
}


def write_peer_predictions(
    tracks: pd.DataFrame,
    out_dir: str | Path,
    tracker: str = "librosa",
    sr: int = 22050,
) -> list[Path]:
    """Run a peer tracker on every track of the index and write prediction files.

    Writes ``{out_dir}/{track_id}.beats`` (one beat time in seconds per line, no
    position column: no downbeat estimate) and ``{out_dir}/{track_id}.json``
    (``fileName``, ``bpm`` (null when unknown), ``duration``, ``method``; no
    ``downbeatOffset``, as this is a tempo estimate, not a beatgrid).

    Args:
        tracks: index rows with ``track_id``, ``audio_path`` and ``duration_s``.
        out_dir: prediction folder of the method, created if needed.
        tracker: a key of :data:`PEER_TRACKERS`.
        sr: analysis sample rate in Hz.

    Returns:
        the paths written.
    """
    if tracker not in PEER_TRACKERS:
        raise ValueError(f"unknown peer tracker {tracker!r}; known: {sorted(PEER_TRACKERS)}")
    track_fn = PEER_TRACKERS[tracker]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for row in tracks.to_dict("records"):
        track_id = str(row["track_id"])
        audio_path = Path(row["audio_path"])
        try:
            beat_times, bpm = track_fn(audio_path, sr)
        except AudioError as exc:  # a bad file never stops the others (the mels job drops it too)
            log.warning("%s: skipped: %s", tracker, exc)
            continue
        grid = {
            "fileName": audio_path.name,
            "bpm": round(bpm, 4) if math.isfinite(bpm) else None,
            "duration": float(row["duration_s"]) if "duration_s" in row else None,
            "method": tracker,
        }
        written += write_prediction_files(out_dir, track_id, beat_times, None, grid)
    return written


def gather_predictions(shard_dirs: Iterable[str | Path], out_dir: str | Path) -> list[Path]:
    """Copy the prediction files of per-shard folders into one folder ``out_dir``.

    The workflow runs a peer tracker per shard (so new audio re-runs one shard's
    job) and gathers them into the one folder per method that the evaluation reads.

    Hidden files (Snakemake's ``.snakemake_timestamp``) are not copied.

    Raises:
        ValueError: two shard folders hold a file of the same name.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source: dict[str, Path] = {}
    for shard_dir in map(Path, shard_dirs):
        for path in sorted(shard_dir.iterdir()):
            if path.name.startswith("."):  # Snakemake's .snakemake_timestamp of directory outputs
                continue
            if path.name in source:
                raise ValueError(f"{path.name} is in two shard folders: {source[path.name].parent} and {shard_dir}")
            source[path.name] = path
            shutil.copyfile(path, out_dir / path.name)
    return [out_dir / name for name in source]
