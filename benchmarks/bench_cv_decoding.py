"""Re-decode a finished ``beatgrid adapt --folds K`` run's held-out activations with other DBN settings.

Each fold's adapted CRNN has already predicted the tracks it never trained on
(``<run>/cv/fold<k>/heldout/activations/crnn/``); this decodes those same activations again
with every variant of the bar-pointer DBN (``crnn_dbn``'s decoder) and scores them against
the tracks' annotations, so a decoder setting is compared without training anything.
Besides fixed settings, two variants take a prior from the fold's *training* tracks only
(their annotated tempi and meters, ``<run>/cv/fold<k>/tracks.csv``), as an adaptation
stage could learn it without touching the held-out fold:

- ``train_tempo_range``: ``bpm_min`` / ``bpm_max`` = the training tracks' slowest / fastest
  tempo, widened by 15 %;
- ``train_meters``: only the meters (beats per bar) of at least 10 % of the training tracks.

Example (from the repository root; the run folder is a result, never committed)::

    python benchmarks/bench_cv_decoding.py benchmarks/out/adapt_realdata

Prints a Markdown table: mean beat F, CMLt, AMLt and downbeat F (mir_eval, ±70 ms, no trim)
per variant over every cross-validated track.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from beatgrid.annotations import read_beats_file
from beatgrid.decoding.dbn import track_dbn
from beatgrid.decoding.peaks import calibrate
from beatgrid.evaluation import evaluate_track

COLUMNS = ["beat_f", "beat_cmlt", "beat_amlt", "downbeat_f"]
#: Fixed DBN settings to compare with the default (``track_dbn`` keywords).
FIXED_VARIANTS: dict[str, dict[str, Any]] = {
    "default (60-200 BPM, 3/4 and 4/4)": {},
    "bpm_max 240": {"bpm_max": 240.0},
    "55-300 BPM": {"bpm_min": 55.0, "bpm_max": 300.0},
    "transition_lambda 300": {"transition_lambda": 300.0},
}


def fold_priors(train_tracks: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The DBN settings a fold's training annotations suggest (see the module docstring)."""
    bpm = train_tracks["bpm"].dropna()
    counts = train_tracks["beats_per_bar"].dropna().astype(int).value_counts()
    meters = sorted(int(m) for m, n in counts.items() if n >= 0.1 * counts.sum()) or [3, 4]
    tempo = {"bpm_min": max(30.0, float(bpm.min()) / 1.15), "bpm_max": float(bpm.max()) * 1.15}
    return {"train_tempo_range": tempo, "train_meters": {"beats_per_bar": meters},
            "train_tempo_range + train_meters": {**tempo, "beats_per_bar": meters}}


def held_out_activations(fold_dir: Path) -> tuple[dict[str, np.ndarray], float]:
    """Calibrated ``[T, 2]`` CRNN probabilities of a fold's held-out tracks, and their fps."""
    path = next((fold_dir / "heldout" / "activations" / "crnn").glob("*.h5"))
    with h5py.File(path, "r") as store:
        pos_weight = store.attrs.get("pos_weight")
        fps = float(store.attrs.get("fps", 50.0))
        return {tid: calibrate(np.asarray(group["activations"]), pos_weight)
                for tid, group in store["tracks"].items()}, fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of beatgrid adapt --folds K")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        for fold_dir in sorted((run / "cv").glob("fold[0-9]*")):
            held = pd.read_csv(fold_dir / "heldout" / "tracks.csv", dtype={"track_id": str})
            variants = {**FIXED_VARIANTS, **fold_priors(pd.read_csv(fold_dir / "tracks.csv"))}
            activations, fps = held_out_activations(fold_dir)
            for track in held.to_dict("records"):
                ref = read_beats_file(Path(track["annotation_path"]))
                ref_downbeats = np.asarray(ref.downbeat_times) if str(track["has_downbeats"]) == "True" else None
                probabilities = activations[track["track_id"]]
                for name, settings in variants.items():
                    beat_times, positions = track_dbn(probabilities[:, 0], probabilities[:, 1], fps=fps, **settings)
                    scores = evaluate_track(np.asarray(ref.beat_times), ref_downbeats, beat_times,
                                            beat_times[positions == 1], trim_seconds=0)
                    rows.append({"run": run.name, "track_id": track["track_id"], "variant": name, **scores})
    table = pd.DataFrame(rows)
    summary = table.groupby("variant", sort=False)[COLUMNS].mean().round(3)
    print(f"{table['track_id'].nunique()} tracks, {table['run'].nunique()} run(s)\n")
    print(summary.to_markdown())


if __name__ == "__main__":
    main()
