"""Index time of the demo with and without the full decode check of every audio file.

    snakemake -d /tmp/demo --cores 2 results/index/tracks.csv   # render the default demo once
    python benchmarks/bench_index.py /tmp/demo                  # then time build_index on it

Prints the median of --repeats runs of each (the first runs also warm the file cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import yaml

import beatgrid.data.index as index

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="workflow directory with the rendered demo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    os.chdir(args.workdir)
    datasets = config["datasets"]
    synth_dirs = {name: sorted(str(p) for p in Path(f"results/demo/{name}").glob("batch*")) for name in datasets}
    features = config["features"]
    real_check = index.check_audio_content
    variants = {"header only": lambda path, min_duration_s=0.0: None, "full decode": real_check}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, check in variants.items():
            index.check_audio_content = check
            started = time.perf_counter()
            tracks, _ = index.build_index(datasets, config["split"], features["tracks_per_shard"], synth_dirs,
                                          min_duration_s=features["n_fft"] / features["sr"])
            times[name].append(time.perf_counter() - started)
    index.check_audio_content = real_check
    for name, values in times.items():
        print(f"{name:12s} median {statistics.median(values):6.2f} s for {len(tracks)} tracks "
              f"({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
