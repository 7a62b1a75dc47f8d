"""From activations to beats, downbeats and beatgrids: running the inference methods, and their files.

The methods themselves (activation store, decoder, settings) are defined in
:mod:`beatgrid.methods`; ``run_method`` runs one over a track's ``[T, 2]`` beat/downbeat
probabilities at ``fps``.

The decoders that read the activations as probabilities (DBN and grid) first undo the
training loss's positive weight (``pos_weight``, kept in the model file and in the
activation stores' attrs; see :func:`beatgrid.decoding.peaks.calibrate`): without it an
uncertain off-beat reads 0.9 and pulls them to double tempo.

Every method writes ``<track_id>.beats`` (``time<TAB>position``, 1 = downbeat, 0 = unknown)
and ``<track_id>.json`` (seed 001's label format plus ``beatsPerBar`` and ``confidence``).
For methods that do not fit a grid, the JSON describes the beats they found: median tempo,
first downbeat, and as confidence the share of inter-beat intervals within 4 % of the median.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .methods import Prediction, Settings, get_method
from .decoding.peaks import activation_pair, calibrate

log = logging.getLogger(__name__)


def run_method(
    method: str,
    activations: np.ndarray,
    fps: float,
    duration_s: float,
    *,
    pos_weight: Iterable[float] | float | None = None,
    **settings: float,
) -> Prediction:
    """Run one inference method (or variant name) on a track's ``[T, 2]`` activations at ``fps``.

    ``settings``: fields of :class:`beatgrid.methods.Settings` (``bpm_min``, ``bpm_max``,
    ``peak_threshold``, ``online_threshold``); the others keep their defaults.
    ``pos_weight``: the positive weight the activations' model was trained with (beat,
    downbeat); the DBN and the grid calibrate the activations with it first.
    """
    decoder = get_method(method).decoder
    activations = activation_pair(activations)
    if decoder.calibrated:
        activations = calibrate(activations, pos_weight)
    return decoder.decode(activations, fps, duration_s, Settings(**settings))


def beats_label(prediction: Prediction, file_name: str, duration_s: float) -> dict[str, Any]:
    """The label JSON of a prediction: its beatgrid, or a description of its beats."""
    if prediction.grid is not None:
        label = prediction.grid.to_label_json(file_name, duration_s)
        for key in ("bpm", "downbeatOffset", "duration", "confidence"):  # as the beats' labels below
            label[key] = round(label[key], 4)
        label["gridSource"] = "fit_beatgrid"
        return label
    times, positions = prediction.beat_times, prediction.beat_positions
    intervals = np.diff(times)
    bpm = _beats_bpm(times) if len(intervals) else None
    confidence = float(np.mean(np.abs(intervals * bpm / 60.0 - 1.0) <= 0.04)) if bpm else 0.0
    downbeats = times[positions == 1]
    first = downbeats[0] if len(downbeats) else (times[0] if len(times) else 0.0)
    bar_lengths = np.diff(np.flatnonzero(positions == 1))
    beats_per_bar = int(np.bincount(bar_lengths).argmax()) if len(bar_lengths) else 4
    return {
        "fileName": file_name,
        "bpm": round(bpm, 4) if bpm else None,
        "downbeatOffset": round(float(first), 4),
        "duration": round(float(duration_s), 4),
        "beatsPerBar": beats_per_bar,
        "confidence": round(confidence, 4),
        "gridSource": "median_beat_interval",
    }


def _beats_bpm(beat_times: np.ndarray) -> float:
    """Tempo of a beat sequence: a line through the beat times against their beat numbers.

    Beat numbers come from the median interval (so a missed beat counts as two intervals);
    the slope is not limited to the frame grid the times were picked on.
    """
    median = float(np.median(np.diff(beat_times)))
    numbers = np.concatenate([[0], np.cumsum(np.maximum(1, np.round(np.diff(beat_times) / median)))])
    slope = np.polyfit(numbers, beat_times, 1)[0] if numbers[-1] >= 2 else median
    return float(60.0 / slope)


def write_prediction(out_dir: str | Path, name: str, prediction: Prediction, file_name: str, duration_s: float) -> None:
    """Write ``<name>.beats`` and ``<name>.json`` (:func:`beats_label`) into ``out_dir``."""
    from .predictions import write_prediction_files

    write_prediction_files(out_dir, name, prediction.beat_times, prediction.beat_positions,
                           beats_label(prediction, file_name, duration_s))


def warn_uncalibrated(method: str, source: str) -> None:
    """Say so when a probability-reading decoder gets outputs it cannot calibrate."""
    if get_method(method).decoder.calibrated:
        log.warning("%s: no pos_weight recorded (a model saved before beatgrid kept it), so %s "
                    "reads the raw, overconfident outputs and may pick double tempo; retrain the "
                    "model (snakemake -R train_crnn) to record it", source, method)


def predict_store(
    method: str,
    settings: dict[str, Any],
    activation_paths: Iterable[str | Path],
    tracks_csv: str | Path,
    out_dir: str | Path,
    progress: bool = True,
) -> int:
    """Run ``method`` on every track of the activation stores; returns the number of tracks."""
    from tqdm import tqdm

    from .data.tracks import read_index
    from .data.store import read_file_attrs, read_store

    tracks = read_index(tracks_csv).set_index("track_id")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in activation_paths:
        attrs = read_file_attrs(path)
        fps = float(attrs["fps"])
        if "pos_weight" not in attrs:
            warn_uncalibrated(method, str(path))
        activations = read_store([path], "activations")
        for track_id, acts in tqdm(sorted(activations.items()), desc=f"{method} {Path(path).stem}", disable=not progress):
            row = tracks.loc[track_id]
            prediction = run_method(method, acts, fps, float(row["duration_s"]),
                                    pos_weight=attrs.get("pos_weight"), **settings)
            write_prediction(out_dir, track_id, prediction, Path(row["audio_path"]).name, float(row["duration_s"]))
            count += 1
    missing = sorted(set(tracks.index) - {p.stem for p in out_dir.glob("*.beats")})
    if missing:
        raise RuntimeError(f"{method}: no activations for {len(missing)} indexed tracks, e.g. {missing[:5]}")
    log.info("%s: wrote predictions for %d tracks to %s", method, count, out_dir)
    return count
