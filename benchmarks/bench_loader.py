"""Training data beyond RAM: peak RSS and served frames/s, in memory vs read on demand.

Writes a synthetic mel + target store set of ``--hours`` of frames (random float16 log-mels,
128 bands at 50 fps, beats every 25 frames; no audio), then, each in a fresh process so
that peak RSS is its own, serves training crops through
:func:`beatgrid.data.dataset.load_frame_dataset` exactly as ``train_crnn`` does (random
crops of ``crop_frames``, batches of ``batch_size`` padded by ``collate_padded``, a
``RandomSampler``), once with everything read into memory and once read from the stores
on demand (memory budget below the data size), with 0 and 2 DataLoader workers.

    python benchmarks/bench_loader.py [--hours 100] [--out benchmarks/out/loader] [--batches 1500]

The stores are kept under ``--out`` and reused by later runs (delete the folder to rewrite
them). Crops are read from the page cache when the files fit in it (say so with results).
Prints a Markdown table:
| path | workers | setup s | peak RSS GB | served frames/s |
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FPS = 50.0
N_MELS = 128
TRACK_SECONDS = 240.0
TRACKS_PER_SHARD = 64


def track_ids(hours: float) -> list[str]:
    return [f"t{i:05d}" for i in range(int(np.ceil(hours * 3600 / TRACK_SECONDS)))]


def write_stores(out: Path, hours: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Mel and target shards of ``hours`` of 4-minute tracks (skipped when already there)."""
    from beatgrid.data.store import atomic_h5, write_track

    ids = track_ids(hours)
    frames = int(TRACK_SECONDS * FPS)
    mel_paths, target_paths = [], []
    rng = np.random.default_rng(seed)
    beat = np.zeros(frames, np.float32)
    beat[::25] = 1.0
    downbeat = np.zeros(frames, np.float32)
    downbeat[::100] = 1.0
    for shard, start in enumerate(range(0, len(ids), TRACKS_PER_SHARD)):
        mel_path, target_path = out / f"mels/{shard:03d}.h5", out / f"targets/{shard:03d}.h5"
        mel_paths.append(str(mel_path))
        target_paths.append(str(target_path))
        if mel_path.exists() and target_path.exists():
            continue
        members = ids[start:start + TRACKS_PER_SHARD]
        with atomic_h5(mel_path, {"fps": FPS, "n_mels": N_MELS}) as mels, atomic_h5(target_path, {"fps": FPS}) as targets:
            for track_id in members:
                mel = rng.standard_normal((frames, N_MELS), dtype=np.float32).astype(np.float16)
                write_track(mels, track_id, {"mel": mel})
                write_track(targets, track_id, {"beat": beat, "downbeat": downbeat}, {"has_downbeats": True})
    return mel_paths, target_paths


def serve(args: argparse.Namespace) -> dict:
    """One measurement in this process: load, then serve ``args.batches`` batches."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from beatgrid.data.dataset import collate_padded, load_frame_dataset
    from beatgrid.threads import cap_threads

    cap_threads(2)
    mel_paths, target_paths = write_stores(args.out, args.hours)
    ids = track_ids(args.hours)
    budget = None if args.path == "memory" else 1e-9
    started = time.perf_counter()
    dataset = load_frame_dataset(mel_paths, "mel", target_paths, ids, memory_budget_gb=budget,
                                 crop_frames=args.crop_frames, seed=0)
    dataset.cover_frames_per_epoch()
    dataset.set_epoch(1)
    setup_s = time.perf_counter() - started
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, collate_fn=collate_padded,
                        num_workers=args.workers)
    frames, batches = 0, 0
    started = time.perf_counter()
    batches_iter = iter(loader)
    for _, _, _, lengths in batches_iter:
        frames += int(lengths.sum())
        batches += 1
        if batches == args.batches:
            break
    seconds = time.perf_counter() - started
    del batches_iter  # joins the workers, so that their peak RSS is counted below
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    return {"path": args.path, "workers": args.workers, "setup_s": setup_s, "frames": frames,
            "peak_rss_gb": own, "worker_peak_rss_gb": children, "frames_per_s": frames / seconds,
            "data_gb": sum(os.path.getsize(p) for p in mel_paths + target_paths) / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=100.0, help="hours of frames in the synthetic stores")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "loader")
    parser.add_argument("--batches", type=int, default=1500, help="batches served per measurement")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-frames", type=int, default=400)
    parser.add_argument("--paths", nargs="+", default=["on_demand:0", "on_demand:2", "memory:0"],
                        help="measurements as PATH:WORKERS, PATH in memory|on_demand")
    parser.add_argument("--path", choices=["memory", "on_demand"], help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.path:  # a child measurement
        print(json.dumps(serve(args)))
        return

    from beatgrid.provenance import machine_description

    started = time.perf_counter()
    mel_paths, target_paths = write_stores(args.out, args.hours)
    print(f"stores: {len(track_ids(args.hours))} tracks of {TRACK_SECONDS:g} s, "
          f"{sum(os.path.getsize(p) for p in mel_paths + target_paths) / 1e9:.2f} GB in {args.out} "
          f"(ready after {time.perf_counter() - started:.0f} s)")
    print(f"Machine: {machine_description()}; load average {os.getloadavg()[0]:.1f} at start\n")
    print("| path | DataLoader workers | setup s | peak RSS GB (main) | peak RSS GB (a worker) | served frames/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for spec in args.paths:
        path, workers = spec.split(":")
        cmd = [sys.executable, __file__, "--hours", str(args.hours), "--out", str(args.out), "--batches",
               str(args.batches), "--batch-size", str(args.batch_size), "--crop-frames", str(args.crop_frames),
               "--path", path, "--workers", workers]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        worker_rss = f"{result['worker_peak_rss_gb']:.2f}" if int(workers) else "-"
        print(f"| {path} | {workers} | {result['setup_s']:.1f} | {result['peak_rss_gb']:.2f} | {worker_rss} | "
              f"{result['frames_per_s']:,.0f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
