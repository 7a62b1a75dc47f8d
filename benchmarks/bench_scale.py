"""Workflow scale: `snakemake -n` planning time and no-op time with thousands of indexed tracks.

For each track count N, in a temporary folder: an ``index_csv`` dataset of N empty
placeholder audio/annotation files, a config that uses it (``config.yaml``'s defaults
otherwise), and ``results/index/tracks.csv`` + ``rejected.csv`` written here in the index's
format, newer than every input, so the index checkpoint is complete and Snakemake plans
the whole DAG (per-shard features, training, activations, inference, evaluation, report).
No audio is processed. Then it times:

- **plan**: ``snakemake -n`` planning every job past the index;
- **no-op -n** and **no-op run**: ``snakemake -n`` and ``snakemake`` after every planned
  output exists (created in dependency order, with Snakemake's metadata recorded as a
  finished run leaves it), both of which must report "Nothing to be done".

Prints a Markdown table with the machine it ran on. Run from the repository root::

    python benchmarks/bench_scale.py                        # 2,000 and 10,000 tracks
    python benchmarks/bench_scale.py --tracks 500 --keep /tmp/scale   # keep the folders
    python benchmarks/bench_scale.py --tracks 10000 --profile-plan    # cProfile the plan

Target (issue 16): under 5 s at 10,000 tracks (issue 7: 10 s).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from beatgrid.data.tracks import EXTRA_COLUMNS, REJECTED_COLUMNS, TRACK_COLUMNS
from beatgrid.provenance import cpu_name

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
DATASET = "scale"
TARGET_S = 5.0



# --------------------------------------------------------------------------- synthetic run


def write_dataset(workdir: Path, n_tracks: int, mtime: float) -> Path:
    """N empty placeholder audio and .beats files and their ``dataset_index.csv``."""
    data = workdir / "data"
    (data / "audio").mkdir(parents=True)
    (data / "beats").mkdir()
    stems = [f"track_{i:05d}" for i in range(n_tracks)]
    for stem in stems:
        for path in (data / "audio" / f"{stem}.wav", data / "beats" / f"{stem}.beats"):
            path.touch()
            os.utime(path, (mtime, mtime))
    csv_path = data / "dataset_index.csv"
    pd.DataFrame(
        {
            "dataset": DATASET,
            "audio_path": [f"audio/{s}.wav" for s in stems],
            "beats_path": [f"beats/{s}.beats" for s in stems],
            "has_downbeats": "true",
        }
    ).to_csv(csv_path, index=False)
    os.utime(csv_path, (mtime, mtime))
    return csv_path


def write_config(workdir: Path, csv_path: Path, tracks_per_shard: int | None = None) -> Path:
    """``config.yaml``'s defaults with the synthetic dataset as the only dataset."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"] = {DATASET: {"format": "index_csv", "path": csv_path.relative_to(workdir).as_posix()}}
    if tracks_per_shard is not None:
        config["features"]["tracks_per_shard"] = tracks_per_shard
    path = workdir / "scale.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _shards(track_ids: list[str], tracks_per_shard: int) -> list[str]:
    try:
        from beatgrid.data.index import n_shards_for, shard_name, shard_of
    except ImportError:  # the documented rule (README, docs/architecture.md)
        n_shards = 1 << (max(1, math.ceil(len(track_ids) / tracks_per_shard)) - 1).bit_length()
        return [f"{int(hashlib.sha1(t.encode()).hexdigest(), 16) % n_shards:03d}" for t in track_ids]
    n_shards = n_shards_for(len(track_ids), tracks_per_shard)
    return [shard_name(shard_of(t, n_shards)) for t in track_ids]


def _splits(tracks: pd.DataFrame, split_cfg: dict) -> pd.Series:
    try:
        from beatgrid.data.index import assign_splits
    except ImportError:
        ranks = tracks["track_id"].map(lambda t: int(hashlib.sha1(t.encode()).hexdigest(), 16) % 100)
        return pd.Series(["test" if r < 15 else "val" if r < 30 else "train" for r in ranks], index=tracks.index)
    return assign_splits(
        tracks, split_cfg["val_fraction"], split_cfg["test_fraction"], split_cfg["seed"], split_cfg["test_datasets"]
    )["split"]


def write_index(workdir: Path, config_path: Path, n_tracks: int, mtime: float) -> int:
    """``results/index/{tracks,rejected}.csv`` as the index job would write them; returns the shard count."""
    config = yaml.safe_load(config_path.read_text())
    stems = [f"track_{i:05d}" for i in range(n_tracks)]
    tracks = pd.DataFrame(
        {
            "track_id": [f"{DATASET}_{s}" for s in stems],
            "dataset": DATASET,
            "audio_path": [f"data/audio/{s}.wav" for s in stems],
            "annotation_path": [f"data/beats/{s}.beats" for s in stems],
            "annotation_format": "beats",
            "has_downbeats": True,
            "duration_s": 30.0,
            "n_beats": 60,
            "bpm": 120.0,
            "beats_per_bar": 4,
            "source": DATASET,
        }
    )
    tracks["split"] = _splits(tracks, config["split"])
    tracks["shard"] = _shards(list(tracks["track_id"]), config["features"]["tracks_per_shard"])
    index_dir = workdir / "results" / "index"
    index_dir.mkdir(parents=True)
    tracks[TRACK_COLUMNS + EXTRA_COLUMNS].to_csv(index_dir / "tracks.csv", index=False)
    pd.DataFrame(columns=REJECTED_COLUMNS).to_csv(index_dir / "rejected.csv", index=False)
    for name in ("tracks.csv", "rejected.csv"):
        os.utime(index_dir / name, (mtime, mtime))
    return tracks["shard"].nunique()


def materialize(workdir: Path, config_path: Path) -> int:
    """Create every output the workflow plans, layer by layer in dependency order (each
    layer one second newer), and record Snakemake's metadata for each job as a finished
    run does. Uses Snakemake's internal DAG (no public API lists a DAG's outputs with
    their `directory()` flags). Returns the number of jobs."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        OutputSettings,
        RemoteExecutionSettings,
        ResourceSettings,
        StorageSettings,
    )

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=8),
            config_settings=ConfigSettings(configfiles=[config_path]),
            storage_settings=StorageSettings(),
            snakefile=SNAKEFILE,
            workdir=workdir,
        )
        workflow_api.dag(DAGSettings())
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        dag = workflow.dag
        layers = list(dag.toposorted(jobs=set(dag.needrun_jobs())))
        index_mtime = (workdir / "results" / "index" / "tracks.csv").stat().st_mtime
        start = max(time.time() - len(layers) - 1, index_mtime + 1)
        n_jobs = 0
        for depth, layer in enumerate(layers):
            stamp = start + depth
            for job in layer:
                n_jobs += 1
                for output in job.output:
                    path = Path(str(output))
                    if output.is_directory:
                        path.mkdir(parents=True, exist_ok=True)
                    else:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.touch()
                    os.utime(path, (stamp, stamp))
        workflow.execution_settings = ExecutionSettings()
        workflow.remote_execution_settings = RemoteExecutionSettings()
        for layer in layers:
            for job in layer:
                workflow.async_run(workflow.persistence.finished(job))
    return n_jobs


# --------------------------------------------------------------------------- timing


def snakemake_cmd(workdir: Path, config_path: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake",
        "-s", str(SNAKEFILE),
        "-d", str(workdir),
        "--cores", "8",
        *args,
        "--configfile", str(config_path),
    ]  # fmt: skip


def timed_run(cmd: list[str], expect: str | None = None) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system) in seconds of `cmd`, and its output.

    The output is captured, as a pipe to a pager would. CPU time is the steadier figure
    on a loaded machine; wall time is what a user waits.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{text[-5000:]}")
    if expect is not None and expect not in text:
        raise RuntimeError(f"{' '.join(cmd)}: expected {expect!r} in its output:\n{text[-5000:]}")
    return elapsed, cpu, text


def planned_jobs(text: str) -> int:
    match = re.search(r"^total\s+(\d+)", text, re.M)
    if match is None:
        raise RuntimeError(f"no job stats in snakemake -n output:\n{text[-3000:]}")
    return int(match.group(1))


def profile_plan(workdir: Path, config_path: Path, out: Path, top: int = 25) -> None:
    """cProfile one `snakemake -n` and print where planning time goes."""
    cmd = snakemake_cmd(workdir, config_path, "-n", "--quiet")
    cmd[1:3] = ["-m", "cProfile", "-o", str(out), "-m", "snakemake"]
    subprocess.run(cmd, capture_output=True, check=True)
    stats = pstats.Stats(str(out))
    print(f"\ncProfile of `snakemake -n` ({out}), top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)
    print("Workflow code (rules/*.smk, beatgrid/):")
    stats.sort_stats("cumulative").print_stats(r"(\.smk|beatgrid)", top)


def newest_code_mtime() -> float:
    """The newest modification time of the workflow's code (Snakefile, rules, scripts, library)."""
    files = [SNAKEFILE, *(REPO / "rules").rglob("*"), *(REPO / "workflow_scripts").rglob("*.py")]
    files += (REPO / "beatgrid").rglob("*.py")
    return max(path.stat().st_mtime for path in files if path.is_file())


def bench(n_tracks: int, root: Path, repeats: int, profile: bool, tracks_per_shard: int | None) -> dict:
    workdir = root / f"tracks_{n_tracks}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    # Inputs, then the index, then (in materialize) each layer of outputs is newer than
    # the last, and all are newer than the workflow's code (an output older than its
    # script counts as changed code).
    t0 = max(time.time() - 100, newest_code_mtime() + 1)
    csv_path = write_dataset(workdir, n_tracks, mtime=t0)
    config_path = write_config(workdir, csv_path, tracks_per_shard)
    os.utime(config_path, (t0, t0))
    n_shards = write_index(workdir, config_path, n_tracks, mtime=t0 + 1)

    plan_s, plan_cpu_s, text = min(timed_run(snakemake_cmd(workdir, config_path, "-n")) for _ in range(repeats))
    n_jobs = planned_jobs(text)
    if not re.search(r"^mels\s+\d+", text, re.M):
        raise RuntimeError(
            f"the plan stops at the index checkpoint (is the synthetic index stale?):\n{text[-3000:]}"
        )
    if profile:
        profile_plan(workdir, config_path, workdir / "plan.prof")

    materialized = subprocess.run(
        [sys.executable, __file__, "--materialize", str(workdir), str(config_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    if materialized.returncode != 0:
        raise RuntimeError(
            f"materializing outputs failed:\n{materialized.stdout[-3000:]}\n{materialized.stderr[-5000:]}"
        )
    nothing = "Nothing to be done"
    noop_dry_s, noop_dry_cpu_s, _ = min(
        timed_run(snakemake_cmd(workdir, config_path, "-n"), expect=nothing) for _ in range(repeats)
    )
    noop_run_s, noop_run_cpu_s, _ = min(
        timed_run(snakemake_cmd(workdir, config_path), expect=nothing) for _ in range(repeats)
    )
    return {
        "tracks": n_tracks,
        "shards": n_shards,
        "jobs": n_jobs,
        "plan_s": plan_s,
        "plan_cpu_s": plan_cpu_s,
        "noop_dry_s": noop_dry_s,
        "noop_dry_cpu_s": noop_dry_cpu_s,
        "noop_run_s": noop_run_s,
        "noop_run_cpu_s": noop_run_cpu_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, nargs="+", default=[2000, 10000], help="indexed track counts")
    parser.add_argument("--repeats", type=int, default=1, help="runs per timing (the minimum is reported)")
    parser.add_argument("--keep", type=Path, help="folder for the synthetic runs (default: a temporary one, removed)")
    parser.add_argument(
        "--tracks-per-shard", type=int, help="override config.yaml's features.tracks_per_shard"
    )
    parser.add_argument("--profile-plan", action="store_true", help="cProfile `snakemake -n` and print the hot spots")
    parser.add_argument("--materialize", nargs=2, metavar=("WORKDIR", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.materialize:
        n_jobs = materialize(Path(args.materialize[0]), Path(args.materialize[1]))
        print(f"created the outputs of {n_jobs} jobs")
        return

    root = args.keep or Path(tempfile.mkdtemp(prefix="beatgrid-scale-"))
    try:
        results = [bench(n, root, args.repeats, args.profile_plan, args.tracks_per_shard) for n in args.tracks]
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    import snakemake

    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    print(
        f"\nMachine: {cpu_name()} ({os.cpu_count()} logical CPUs{load}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Snakemake {snakemake.__version__}; "
        f"config.yaml defaults, tracks_per_shard {args.tracks_per_shard or 'from config.yaml'}, "
        f"minimum of {args.repeats} run(s).\n"
    )
    print("Each cell: wall seconds (CPU seconds, user + system).\n")
    print("| tracks | shards | planned jobs | plan: `snakemake -n` | no-op: `snakemake -n` | no-op: `snakemake` |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cells = [f"{r[k + '_s']:.1f} ({r[k + '_cpu_s']:.1f})" for k in ("plan", "noop_dry", "noop_run")]
        print(f"| {r['tracks']:,} | {r['shards']:,} | {r['jobs']:,} | " + " | ".join(cells) + " |")
    worst = max(max(r["plan_s"], r["noop_dry_s"], r["noop_run_s"]) for r in results)
    verdict = "meets" if worst < TARGET_S else "misses"
    print(f"\nSlowest: {worst:.1f} s, which {verdict} the {TARGET_S:.0f} s target.")


if __name__ == "__main__":
    main()
