"""Where the no-tempo threshold (``--min-confidence``) falls: beatgrid confidence on noise and
on annotated real clips, with whether the grid's tempo is right (Acc1, within 4 %).

Run from the repository root (``PYTHONPATH=.``); the clips are read in place, never copied::

    python benchmarks/bench_confidence.py --index ../shared/realdata/dataset_index.csv
    python benchmarks/bench_confidence.py --index CSV --models results/models
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from beatgrid.analysis import DEFAULT_MIN_CONFIDENCE, analyze, load_models
from beatgrid.annotations import read_beats_file
from beatgrid.provenance import machine_description


def noise_signals(sr: int, duration_s: float = 30.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Beat-less test signals: white, pink-ish, amplitude-modulated (speech-like) and quiet noise, a sweep."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    t = np.arange(n) / sr
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(2000) / 2000, "same")
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3.3 * t + np.sin(2 * np.pi * 0.7 * t))) ** 2
    return {
        "white noise": 0.3 * rng.standard_normal(n),
        "pink-ish noise": 0.3 * brown / np.abs(brown).max(),
        "modulated noise": 0.3 * rng.standard_normal(n) * envelope,
        "noise at -50 dBFS": 0.003 * rng.standard_normal(n),
        "sine sweep": 0.3 * np.sin(2 * np.pi * (200 + 50 * t) * t),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True,
                        help="dataset_index.csv (dataset,audio_path,beats_path; paths relative to it)")
    parser.add_argument("--models", default=None, help="models folder or shipped name (default: the shipped model)")
    args = parser.parse_args()
    models = load_models(args.models, device="cpu")
    print(f"{machine_description()}; models {models.folder}; method crnn_grid, min_confidence 0\n")
    rows = []
    for name, signal in noise_signals(models.mel_config.sr).items():
        grid = analyze(signal.astype(np.float32), sr=models.mel_config.sr, models=models, method="crnn_grid",
                       min_confidence=0.0).beatgrid
        rows.append({"input": name, "confidence": 0.0 if grid is None else grid.confidence, "acc1": None})
    index = pd.read_csv(args.index)
    for row in index.itertuples():
        reference = read_beats_file(args.index.parent / row.beats_path).beat_times
        grid = analyze(args.index.parent / row.audio_path, models=models, method="crnn_grid",
                       min_confidence=0.0).beatgrid
        bpm = 60.0 / np.median(np.diff(reference))
        right = bool(grid is not None and abs(grid.bpm / bpm - 1.0) <= 0.04)
        rows.append({"input": Path(row.audio_path).name, "confidence": 0.0 if grid is None else grid.confidence,
                     "acc1": right})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".4f"))
    real = table[table["acc1"].notna()].astype({"acc1": bool})
    for threshold in sorted({0.001, 0.005, 0.01, DEFAULT_MIN_CONFIDENCE, 0.05, 0.1}):
        below = real[real["confidence"] < threshold]
        print(f"\nbelow {threshold:g}: {len(below)} of {len(real)} clips ({int(below['acc1'].sum())} with the right "
              f"tempo); noise below: {int((table[table['acc1'].isna()]['confidence'] < threshold).sum())} of 5")


if __name__ == "__main__":
    main()
