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
    if not (run / "results/evaluation/summary.csv").is_file():  # an unfinished run: where its time went so far
        print_rule_timings(run)
        return
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
            best = frame.loc[frame["val_score" if "val_score" in frame else "val_beat_f"].idxmax()]
            print(
                f"{model}: {len(frame)} epochs, {frame['seconds'].sum() / 60:.1f} min training, "
                f"{frame['frames_per_s'].median():.0f} frames/s, best epoch {int(best['epoch'])} (val beat F {best['val_beat_f']:.3f}, downbeat F {best['val_downbeat_f']:.3f})"
            )
    print_rule_timings(run)


def rule_timings(run: Path) -> pd.DataFrame:
    """Per rule, from the ``benchmark:`` files of a run: jobs, summed and longest wall
    seconds, summed CPU seconds and the largest peak RSS (MB)."""
    rows = []
    for path in sorted((run / "logs" / "benchmarks").glob("*/*.tsv")):
        bench = pd.read_csv(path, sep="\t")
        if len(bench):
            rows.append({"rule": path.parent.name, **bench.iloc[-1][["s", "cpu_time", "max_rss"]].to_dict()})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    frame[["s", "cpu_time", "max_rss"]] = frame[["s", "cpu_time", "max_rss"]].apply(pd.to_numeric, errors="coerce")
    table = frame.groupby("rule").agg(
        jobs=("s", "size"), wall_s=("s", "sum"), longest_job_s=("s", "max"), cpu_s=("cpu_time", "sum"),
        peak_rss_mb=("max_rss", "max"),
    )
    table = table.sort_values("cpu_s", ascending=False).reset_index()
    total = {"rule": "total", "jobs": table["jobs"].sum(), "wall_s": table["wall_s"].sum(),
             "longest_job_s": table["longest_job_s"].max(), "cpu_s": table["cpu_s"].sum(),
             "peak_rss_mb": table["peak_rss_mb"].max()}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def print_rule_timings(run: Path) -> None:
    table = rule_timings(run)
    if table.empty:
        return
    print("\nTime per rule (benchmark files; wall_s sums the jobs' own wall clock, which overlap "
          "when jobs run in parallel; cpu_s is the CPU time of the job's processes):\n")
    print(table.to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()
