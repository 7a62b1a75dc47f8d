"""Markdown tables for benchmarks/RESULTS.md from a finished workflow run.

    python benchmarks/summarize_run.py benchmarks/out/realdata

Prints: the test-split summary per dataset and method (with librosa beside every
method), the beatgrid's tempo accuracy and phase error on the demo's constant-tempo
test tracks (those with a label JSON), per-source real-data figures, and the training
time of both models from their history.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from beatgrid.provenance import machine_description

COLUMNS = ["beat_f", "beat_cmlt", "beat_amlt", "downbeat_f", "tempo_acc1", "tempo_acc2", "grid_phase_error_ms"]


def fmt(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".3f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="working directory of a finished run")
    run = parser.parse_args().run
    summary = pd.read_csv(run / "results/evaluation/summary.csv")
    per_track = pd.read_csv(run / "results/evaluation/per_track.csv")
    tracks = pd.read_csv(run / "results/index/tracks.csv", dtype={"shard": str})
    print(f"Machine: {machine_description()}\n")

    test = summary[summary["split"] == "test"]
    for dataset, rows in test.groupby("dataset", sort=False):
        print(f"### test split, dataset `{dataset}` ({int(rows['n_tracks'].max())} tracks)\n")
        print(fmt(rows[["method", "variant", *COLUMNS]]) + "\n")

    # Constant-tempo demo tracks: the demo writes a label JSON only for those.
    constant = {
        row.track_id
        for row in tracks.itertuples()
        if row.dataset == "demo" and (run / row.audio_path).with_suffix(".labels.json").exists()
    }
    grid = per_track[per_track["method"].str.startswith("crnn_grid") & per_track["track_id"].isin(constant)]
    for split, rows in grid.groupby("split"):
        print(
            f"crnn_grid on constant-tempo demo {split} tracks: n={len(rows)}, "
            f"Acc1={rows['tempo_acc1'].mean():.3f}, median phase error={rows['grid_phase_error_ms'].median():.1f} ms, "
            f"max over tracks of median error={rows['grid_phase_error_ms'].max():.1f} ms\n"
        )

    for model in ("crnn", "ltm"):
        history = run / f"results/models/{model}/history.csv"
        if history.is_file():
            frame = pd.read_csv(history)
            best = frame.loc[frame["val_beat_f"].idxmax()]
            print(
                f"{model}: {len(frame)} epochs, {frame['seconds'].sum() / 60:.1f} min training, "
                f"{frame['frames_per_s'].median():.0f} frames/s, best val beat F {best['val_beat_f']:.3f} at epoch {int(best['epoch'])}"
            )


if __name__ == "__main__":
    main()
