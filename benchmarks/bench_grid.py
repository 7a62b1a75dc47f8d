"""Benchmark: beatgrid fitting and DBN tracking on synthetic activations.

Times :func:`beatgrid.decoding.grid.fit_beatgrid` on a 4-minute track at 50 fps (12,000 frames;
target <= 5 ms) and :func:`beatgrid.decoding.dbn.track_dbn`, and measures BPM and phase error
over a sweep of random fractional tempi (60-200 BPM, 0.01 steps), offsets, meters,
durations and degradation levels, plus the seed's failure cases and the grid
confidence on tempo changes. Prints Markdown for benchmarks/RESULTS.md.

    python benchmarks/bench_grid.py                 # full run, a few minutes on 2 cores
    python benchmarks/bench_grid.py --tracks 20     # quick look
    python benchmarks/bench_grid.py --out benchmarks/out/bench_grid.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import mir_eval
import numba
import numpy as np
import scipy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beatgrid.decoding.dbn import track_dbn  # noqa: E402
from beatgrid.decoding.grid import fit_beatgrid  # noqa: E402
from tests.synthetic_activations import (  # noqa: E402
    constant_tempo_beats,
    make_track,
    ramp_beats,
    tempo_change_beats,
)

FPS = 50.0

CONDITIONS = {
    "clean": dict(),
    "mild": dict(noise=0.05, missing=0.1, extra=0.1, jitter_s=0.003),
    "heavy": dict(noise=0.15, missing=0.25, extra=0.25, jitter_s=0.008),
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{cpu}, {os.cpu_count()} logical cores (load average {load} at start); "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"numba {numba.__version__}; {platform.system()} {platform.release()}"
    )


def grid_errors_ms(grid, beat_times: np.ndarray) -> np.ndarray:
    """Distance (ms) of every true beat to its nearest grid line, as beatgrid.evaluation does."""
    period = grid.period_s
    k = np.round((beat_times - grid.offset_s) / period)
    return 1000.0 * np.abs(beat_times - (grid.offset_s + k * period))


def timings(runs: int) -> list[str]:
    beats, positions = constant_tempo_beats(128.37, 240.0, 0.1)
    track = make_track(beats, positions, 240.0, FPS, rng=0, **CONDITIONS["mild"])
    rows = []
    for label, down in [("with downbeat activation", track.downbeat_activation), ("beat activation only", None)]:
        for _ in range(5):
            fit_beatgrid(track.beat_activation, FPS, down)
        samples, cpu = [], []
        for _ in range(runs):
            start, start_cpu = time.perf_counter(), time.thread_time()
            fit_beatgrid(track.beat_activation, FPS, down)
            samples.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
        ms = 1000.0 * np.array(samples)
        rows.append(
            f"| `fit_beatgrid`, {label} | {len(track.beat_activation)} | {runs} | {np.median(ms):.2f} | "
            f"{1000.0 * np.median(cpu):.2f} | {np.min(ms):.2f} | {np.percentile(ms, 90):.2f} |"
        )
    start = time.perf_counter()
    track_dbn(track.beat_activation[:500], track.downbeat_activation[:500], fps=FPS)
    first_call = time.perf_counter() - start
    for label, meters in [("beats_per_bar=(3, 4)", (3, 4)), ("beats_per_bar=4", 4)]:
        samples, cpu = [], []
        for _ in range(5):
            start, start_cpu = time.perf_counter(), time.thread_time()
            track_dbn(track.beat_activation, track.downbeat_activation, fps=FPS, beats_per_bar=meters)
            samples.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
        ms = 1000.0 * np.array(samples)
        rows.append(
            f"| `track_dbn`, {label}, 60-200 BPM | {len(track.beat_activation)} | 5 | {np.median(ms):.1f} | "
            f"{1000.0 * np.median(cpu):.1f} | {np.min(ms):.1f} | {np.max(ms):.1f} |"
        )
    header = [
        "| what | frames | runs | median wall ms | median CPU ms | min wall ms | p90 wall ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    note = (
        f"\n`track_dbn`'s first call in a fresh process (numba cache load or compile, plus a short "
        f"decode) took {first_call:.2f} s; for `track_dbn` the p90 column is the max. The machine is "
        "shared: wall-clock medians and p90 include waits for the CPU (see the load average); the "
        "CPU time of the calling thread and the minimum show the uncontended cost."
    )
    return header + rows + [note]


def octave_name(ratio: float) -> str | None:
    for value, name in [(2.0, "x2"), (0.5, "x1/2"), (3.0, "x3"), (1 / 3, "x1/3"), (1.5, "x3/2"), (2 / 3, "x2/3")]:
        if abs(ratio / value - 1) < 0.02:
            return name
    return None


def sweep(n_tracks: int, seed: int) -> tuple[list[str], list[dict]]:
    rng = np.random.default_rng(seed)
    header = [
        "| condition | duration | tracks | median \\|ΔBPM\\| | max \\|ΔBPM\\| | \\|ΔBPM\\| < 0.02 | "
        "median phase err ms | p95 of max err ms | max err < 10 ms | gross errors (> 1 BPM) | "
        "meter right | median confidence | median CPU ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines = []
    records = []
    for condition, degradation in CONDITIONS.items():
        for duration in (30.0, 240.0):
            errors_bpm, median_err, max_err, meter_ok, confidence, seconds, wrong = [], [], [], [], [], [], []
            for _ in range(n_tracks):
                bpm = round(float(rng.uniform(60.0, 200.0)), 2)
                offset = float(rng.uniform(0.0, 60.0 / bpm))
                meter = int(rng.choice([3, 4]))
                beats, positions = constant_tempo_beats(bpm, duration, offset, meter, int(rng.integers(1, meter + 1)))
                track = make_track(beats, positions, duration, FPS, rng=int(rng.integers(2**31)), **degradation)
                start = time.thread_time()
                grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
                seconds.append(time.thread_time() - start)
                err = grid_errors_ms(grid, beats)
                errors_bpm.append(abs(grid.bpm - bpm))
                median_err.append(np.median(err))
                max_err.append(np.max(err))
                meter_ok.append(grid.beats_per_bar == meter)
                confidence.append(grid.confidence)
                if abs(grid.bpm - bpm) > 1.0:  # a wrong tempo, not an imprecise one
                    wrong.append(octave_name(grid.bpm / bpm) or "other")
                records.append(dict(bpm=bpm, condition=condition, duration=duration, error=abs(grid.bpm - bpm)))
            errors_bpm, max_err = np.array(errors_bpm), np.array(max_err)
            wrong_text = ", ".join(f"{name}: {wrong.count(name)}" for name in sorted(set(wrong))) or "0"
            lines.append(
                f"| {condition} | {duration:.0f} s | {n_tracks} | {np.median(errors_bpm):.4f} | "
                f"{errors_bpm.max():.4f} | {np.mean(errors_bpm < 0.02):.1%} | {np.median(median_err):.2f} | "
                f"{np.percentile(max_err, 95):.2f} | {np.mean(max_err < 10):.1%} | {wrong_text} | "
                f"{np.mean(meter_ok):.1%} | {np.median(confidence):.2f} | {1000 * np.median(seconds):.2f} |"
            )
    return header + lines, records


def by_tempo_band(records: list[dict]) -> list[str]:
    lines = [
        "| tempo band | tracks | median \\|ΔBPM\\| | p95 \\|ΔBPM\\| | \\|ΔBPM\\| < 0.02 |",
        "|---|---:|---:|---:|---:|",
    ]
    bpm = np.array([r["bpm"] for r in records])
    err = np.array([r["error"] for r in records])
    for low, high in [(60, 90), (90, 120), (120, 150), (150, 180), (180, 200)]:
        sel = (bpm >= low) & (bpm < high)
        if sel.any():
            lines.append(
                f"| {low}-{high} BPM | {sel.sum()} | {np.median(err[sel]):.4f} | "
                f"{np.percentile(err[sel], 95):.4f} | {np.mean(err[sel] < 0.02):.1%} |"
            )
    return lines


def seed_cases() -> list[str]:
    lines = [
        "| true BPM | seed 001 (issue 5) | `fit_beatgrid` BPM | \\|ΔBPM\\| | max phase err ms | beat F (grid vs truth) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    seed_result = {128.37: "77.0 (F 0.25)", 93.27: "186.5"}
    for bpm in (128.37, 93.27):
        beats, positions = constant_tempo_beats(bpm, 240.0, 0.05)
        track = make_track(beats, positions, 240.0, FPS, rng=0)
        grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
        f = mir_eval.beat.f_measure(beats, grid.beat_times(240.0))
        lines.append(
            f"| {bpm} | {seed_result[bpm]} | {grid.bpm:.4f} | {abs(grid.bpm - bpm):.4f} | "
            f"{grid_errors_ms(grid, beats).max():.2f} | {f:.3f} |"
        )
    return lines


def confidence_cases() -> list[str]:
    cases = {
        "constant, clean": constant_tempo_beats(126.0, 240.0, 0.1),
        "constant, heavy degradation": constant_tempo_beats(126.0, 240.0, 0.1),
        "tempo change 120 -> 100 BPM at 60 s": tempo_change_beats(120.0, 100.0, 60.0, 240.0),
        "tempo change 120 -> 132 BPM at 120 s": tempo_change_beats(120.0, 132.0, 120.0, 240.0),
        "drift 120 -> 122 BPM (1.7 %)": ramp_beats(120.0, 122.0, 240.0),
        "ramp 120 -> 129.6 BPM (+8 %)": ramp_beats(120.0, 129.6, 240.0),
    }
    lines = [
        "| 4-minute track | grid confidence | grid max err ms | `track_dbn` beat F | `track_dbn` downbeat F |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (beats, positions) in cases.items():
        degradation = CONDITIONS["heavy"] if "heavy" in name else CONDITIONS["mild"] if "clean" not in name else {}
        track = make_track(beats, positions, 240.0, FPS, rng=1, **degradation)
        grid = fit_beatgrid(track.beat_activation, FPS, track.downbeat_activation)
        times, est_positions = track_dbn(track.beat_activation, track.downbeat_activation, fps=FPS)
        f_beat = mir_eval.beat.f_measure(beats, times)
        f_down = mir_eval.beat.f_measure(track.downbeat_times, times[est_positions == 1])
        lines.append(
            f"| {name} | {grid.confidence:.3f} | {grid_errors_ms(grid, beats).max():.1f} | "
            f"{f_beat:.3f} | {f_down:.3f} |"
        )
    noise = np.random.default_rng(2).uniform(0.0, 0.3, size=12000)
    lines.append(f"| uniform noise, no beats | {fit_beatgrid(noise, FPS).confidence:.3f} | - | - | - |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100, help="random tracks per condition x duration")
    parser.add_argument("--timing-runs", type=int, default=200, help="fit_beatgrid runs for the median")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)

    sections = [
        "## Beatgrid and DBN post-processing (`benchmarks/bench_grid.py`)",
        "",
        f"Machine: {machine()}.",
        f"Command: `python benchmarks/bench_grid.py --tracks {args.tracks} --seed {args.seed}`. "
        "Synthetic activations at 50 fps from `tests/synthetic_activations.py` (Gaussian bumps, "
        "std 20 ms, at the exact beat times); conditions: clean; mild = noise 0.05, 10 % missing, "
        "10 % extra peaks, 3 ms jitter; heavy = noise 0.15, 25 % missing, 25 % extra, 8 ms jitter. "
        "Phase error: distance of every true beat to its nearest grid line (as `beatgrid.evaluation`).",
        "",
        "### Speed (4-minute track, 50 fps)",
        "",
        *timings(args.timing_runs),
        "",
        "### Accuracy over random tempi (60-200 BPM, 0.01 steps), offsets, 3/4 and 4/4",
        "",
    ]
    table, records = sweep(args.tracks, args.seed)
    sections += table
    sections += [
        "",
        "On short, heavily degraded tracks the BPM precision is bounded by the peak timing noise: "
        "a least-squares slope over N beats with timing std s has std s * sqrt(12 / N^3) per beat "
        "(30 s at 190 BPM with 25 % missing and 8 ms jitter: ~0.03 BPM), yet the grid still stays "
        "within a few ms of every beat, because the tempo error and the track length shrink together.",
        "",
        "BPM error by tempo band (all conditions and durations above):",
        "",
        *by_tempo_band(records),
    ]
    sections += ["", "### The seed's failure cases (clean 4-minute activations)", "", *seed_cases()]
    sections += ["", "### Confidence on tempo changes, and the DBN on the same tracks", "", *confidence_cases(), ""]
    text = "\n".join(sections)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
