"""Latency of online beat tracking: per-frame processing time and decision delay.

Times :meth:`beatgrid.decoding.streaming.OnlineBeatTracker.process_frame` (one LTM step plus
a causal decision rule: peak picking, or forward filtering of the bar-pointer HMM, ``dbn``)
frame by frame on CPU, and, separately, the LTM step and each rule alone; measures the
decision delay (frames between a beat and the frame whose arrival decides it) on simulated
CRNN activations. Prints a Markdown table with the machine it ran on.

Run from the repository root after ``pip install -e .`` (or with ``PYTHONPATH=.``)::

    python benchmarks/bench_latency.py                      # config.yaml's LTM sizes, untrained
    python benchmarks/bench_latency.py --model results/models/ltm/model.pt
    python benchmarks/bench_latency.py --kinds tcn gru --frames 5000 --threads 1

Untrained and trained models of the same size cost the same time per frame.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from beatgrid.provenance import cpu_name
from beatgrid.data.activation_augment import simulate_activations
from beatgrid.models import build_model, load_model
from beatgrid.models.ltm import ltm_model_config
from beatgrid.decoding.streaming import DECISION_RULES, OnlineBeatTracker

CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"


def timed(fn, frames: np.ndarray, warmup: int) -> np.ndarray:
    """Per-call wall time in microseconds of ``fn(frame)`` over ``frames`` (after warm-up calls)."""
    for frame in frames[:warmup]:
        fn(frame)
    times = np.empty(len(frames) - warmup)
    for i, frame in enumerate(frames[warmup:]):
        start = time.perf_counter_ns()
        fn(frame)
        times[i] = (time.perf_counter_ns() - start) / 1e3
    return times


def row(name: str, times_us: np.ndarray, budget_us: float) -> str:
    return (
        f"| {name} | {times_us.mean():.1f} | {np.percentile(times_us, 50):.1f} | "
        f"{np.percentile(times_us, 99):.1f} | {times_us.max():.0f} | {100 * times_us.mean() / budget_us:.2f} % |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a trained LTM model.pt (default: config.yaml sizes)")
    parser.add_argument("--kinds", nargs="+", default=["tcn", "gru"], choices=["tcn", "gru"])
    parser.add_argument("--frames", type=int, default=3000, help="frames timed per measurement")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--fps", type=float, default=50.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    fps = args.fps
    n_frames = args.frames + args.warmup
    rng = np.random.default_rng(0)
    beats = np.arange(0.5, n_frames / fps, 60.0 / 128)
    activations = simulate_activations(beats, beats[::4], n_frames, fps, rng)

    pos_weight = (13.0, 50.0)  # what the dbn rule calibrates with: about the shipped LTM's
    if args.model is not None:
        model, meta = load_model(args.model)
        pos_weight = meta.get("pos_weight") or pos_weight
        fps = float((meta.get("features") or {}).get("fps") or fps)
        models = {f"{meta['kind']} {meta['model_config']} ({args.model})": model}
    else:
        cfg = yaml.safe_load(CONFIG.read_text())["ltm"]
        models = {}
        for kind in args.kinds:
            kind, model_config = ltm_model_config({**cfg, "kind": kind})
            sizes = ", ".join(f"{k}={v}" for k, v in model_config.items() if k not in ("in_channels", "dropout"))
            models[f"{kind} ({sizes})"] = build_model(kind, model_config).eval()

    budget_us = 1e6 / fps
    print(f"Machine: {cpu_name()} ({os.cpu_count()} logical CPUs), {platform.system()} {platform.release()}, Python {platform.python_version()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s). "
          f"{args.frames} frames timed after {args.warmup} warm-up frames; frame period {budget_us:.0f} µs.\n")
    print("| per frame | mean µs | p50 µs | p99 µs | max µs | of frame period |")
    print("|---|---|---|---|---|---|")
    for rule, rule_class in DECISION_RULES.items():
        print(row(f"decision rule {rule} alone", timed(rule_class(fps).process_frame, activations, args.warmup),
                  budget_us))
    delays: dict[str, list[int]] = {rule: [] for rule in DECISION_RULES}
    for name, model in models.items():
        with torch.inference_mode():
            state = model.init_state(1)

            def ltm_step(frame: np.ndarray) -> None:
                nonlocal state
                _, state = model.step(torch.from_numpy(frame)[None], state)

            print(row(f"LTM step, {name}", timed(ltm_step, activations, args.warmup), budget_us))
        for rule in DECISION_RULES:
            # threshold 0: an untrained LTM's outputs have arbitrary scale, yet every rule must decide
            options = {"threshold": 0.0, "pos_weight": pos_weight} if rule == "dbn" else {"threshold": 0.0}
            tracker = OnlineBeatTracker(model, fps, rule=rule, **options)
            print(row(f"LTM step + {rule} rule, {name}", timed(tracker.process_frame, activations, args.warmup),
                      budget_us))
            # Decision delay: the frame index at which each beat is emitted minus the beat's frame.
            tracker.reset()
            for index, frame in enumerate(activations):
                event = tracker.process_frame(frame)
                if event is not None:
                    delays[rule].append(index - event.frame)
    print()
    for rule, frames in delays.items():
        frames = np.asarray(frames)
        if len(frames) == 0:
            print(f"Decision delay, {rule} rule: no beats decided.")
            continue
        print(f"Decision delay, {rule} rule: {frames.min()}–{frames.max()} frame(s) over {len(frames)} beats "
              f"= {1e3 * frames.max() / fps:.0f} ms at {fps:g} fps, plus the per-frame processing time above.")
    print("Upstream, each centred STFT frame of the CRNN input needs n_fft/2 samples of look-ahead "
          "(512 samples = 23 ms at 22050 Hz).")


if __name__ == "__main__":
    main()
