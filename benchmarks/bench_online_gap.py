"""How much of the online tracker's gap to the offline DBN is hindsight: decisions vs delay.

Runs trained models (by default the shipped ones) over every clip of a ``dataset_index.csv``
and decodes the same activations, CRNN and LTM, four ways over one bar-pointer HMM:

- ``forward``: ``ltm_online``'s rule (:class:`beatgrid.decoding.streaming.CausalDBN`,
  forward filtering; a beat is decided one frame after its peak);
- ``lag <L>``: :func:`beatgrid.decoding.dbn.fixed_lag_viterbi`, each frame decided ``L``
  frames late from the most likely path ending there (a beat at most ``L + 1`` frames late);
- ``viterbi``: the offline Viterbi path (``crnn_dbn``'s decoder, every frame of the track).

Example (from the repository root; nothing is trained)::

    python benchmarks/bench_online_gap.py --index ../shared/realdata/dataset_index.csv --lags 0 5 25 50 100

Prints a Markdown table: mean beat F, CMLt, AMLt and downbeat F (mir_eval, ±70 ms, no trim)
per activation source and decoder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from bench_pretrained import clip_activations, index_clips
from beatgrid.decoding.dbn import fixed_lag_viterbi
from beatgrid.decoding.peaks import calibrate
from beatgrid.evaluation import evaluate_track
from beatgrid.inference import run_method

COLUMNS = ["beat_f", "beat_cmlt", "beat_amlt", "downbeat_f"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="pretrained:synth-v2",
                        help="pretrained:<name> or a folder with crnn/model.pt and ltm/model.pt")
    parser.add_argument("--index", type=Path, required=True, help="a dataset_index.csv")
    parser.add_argument("--lags", type=int, nargs="+", default=[0, 5, 10, 25, 50, 100],
                        help="decision delays of the fixed-lag Viterbi (frames)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    rows = []
    clips = list(index_clips(args.index))
    for (dataset, clip, _, ref), fps, duration_s, outputs in clip_activations(args.models, clips):
        for source, (activations, meta) in outputs.items():
            pos_weight = meta.get("pos_weight")
            decoded = {"forward (ltm_online's rule)": run_method("ltm_online", activations, fps, duration_s,
                                                                   pos_weight=pos_weight),
                       "viterbi (offline)": run_method("crnn_dbn", activations, fps, duration_s, pos_weight=pos_weight)}
            decoded = {name: (prediction.beat_times, prediction.downbeat_times) for name, prediction in decoded.items()}
            probabilities = calibrate(activations, pos_weight)
            for lag in args.lags:
                beat_times, positions = fixed_lag_viterbi(probabilities[:, 0], probabilities[:, 1], fps, lag)
                decoded[f"lag {lag} frames ({lag / fps:.2f} s)"] = (beat_times, beat_times[positions == 1])
            for decoder, (beat_times, downbeat_times) in decoded.items():
                scores = evaluate_track(ref.beat_times, ref.downbeat_times, beat_times, downbeat_times,
                                        ref_bpm=ref.bpm, trim_seconds=0.0)
                rows.append({"dataset": dataset, "clip": clip, "source": source, "decoder": decoder, **scores})
    table = pd.DataFrame(rows)
    print(f"models: {args.models}; {table['clip'].nunique()} clips in {time.perf_counter() - started:.0f} s\n")
    summary = table.groupby(["source", "decoder"], sort=False)[COLUMNS].mean()
    print(summary.reset_index().to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
