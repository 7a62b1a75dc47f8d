"""Evaluate trained models (by default the shipped one) on real clips and on the demo.

Runs the CRNN (and the LTM over its activations) on every clip of a seed-000 style
``dataset_index.csv`` (``dataset,audio_path,beats_path,has_downbeats``, paths relative to
the CSV) and/or on the default demo's test split rendered by :mod:`beatgrid.data.synth`,
decodes every inference variant of the config's ``inference:`` block, and scores them with
:func:`beatgrid.evaluation.evaluate_track` (mir_eval, ±70 ms). Nothing is trained here.

Examples (from the repository root)::

    python benchmarks/bench_pretrained.py --index ../shared/realdata/dataset_index.csv --trim 0
    python benchmarks/bench_pretrained.py --models /tmp/run/results/models --demo-test \\
        --index ../shared/realdata/dataset_index.csv --trim 0 --out benchmarks/out/pretrained

Prints a Markdown table per evaluation set (mean over clips per method variant, and beat F
per source dataset) and writes ``per_track.csv`` under ``--out`` when given.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
import yaml

from beatgrid.activations import compute_activations
from beatgrid.annotations import read_beats_file
from beatgrid.audio import load_audio
from beatgrid.evaluation import Reference, evaluate_track
from beatgrid.features import MelConfig, log_mel
from beatgrid.inference import run_method
from beatgrid.models import load_model
from beatgrid.pretrained import resolve_model_file
from beatgrid.decoding.streaming import ltm_probabilities
from beatgrid.workflow import inference_variants

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["beat_f", "beat_cmlt", "beat_amlt", "downbeat_f", "tempo_acc1", "tempo_acc2"]


def index_clips(index_csv: Path) -> Iterator[tuple[str, str, np.ndarray, Reference]]:
    """(dataset, clip name, audio path, reference) for each row of a dataset_index.csv."""
    table = pd.read_csv(index_csv)
    for row in table.to_dict("records"):
        ann = read_beats_file(index_csv.parent / row["beats_path"])
        downbeats = np.asarray(ann.downbeat_times) if str(row["has_downbeats"]).lower() == "true" else None
        yield str(row["dataset"]), str(row["audio_path"]), index_csv.parent / row["audio_path"], \
            Reference(np.asarray(ann.beat_times), downbeats)


def demo_test_tracks(config: dict[str, Any]) -> list[int]:
    """Indices of the default demo's test split (as the workflow's index stage assigns it)."""
    from beatgrid.data.index import assign_splits, make_track_id
    from beatgrid.data.synth import track_stem

    (name, source), = ((k, v) for k, v in config["datasets"].items() if v["format"] == "synth")
    ids = [make_track_id(name, track_stem(i)) for i in range(int(source["n_tracks"]))]
    split = config["split"]
    tracks = assign_splits(pd.DataFrame({"track_id": ids, "dataset": name}), split["val_fraction"],
                           split["test_fraction"], split["seed"])
    return [i for i, s in enumerate(tracks["split"]) if s == "test"]


def clip_activations(models: str, clips: list, device: str = "cpu") -> Iterator[tuple[tuple, float, float, dict]]:
    """Per clip of ``clips`` (as :func:`index_clips` gives them): ``(clip, fps, duration_s, outputs)``,
    ``outputs`` mapping ``crnn`` (and ``ltm`` when the models have one) to ``(activations, model metadata)``."""
    crnn, crnn_meta = load_model(resolve_model_file(models, "crnn"))
    ltm_path = resolve_model_file(models, "ltm")
    ltm, ltm_meta = load_model(ltm_path) if ltm_path.is_file() else (None, {})
    mel_config = MelConfig.from_dict(crnn_meta["features"])
    for clip in clips:
        audio_or_path = clip[2]
        audio = audio_or_path if isinstance(audio_or_path, np.ndarray) else load_audio(audio_or_path, mel_config.sr)
        outputs = {"crnn": (compute_activations(crnn, log_mel(audio, mel_config), device=device), crnn_meta)}
        if ltm is not None:
            outputs["ltm"] = (ltm_probabilities(ltm, outputs["crnn"][0]), ltm_meta)
        yield clip, mel_config.fps, len(audio) / mel_config.sr, outputs


def evaluate_models(models: str, sets: dict[str, list], config: dict[str, Any], trim_seconds: float,
                    device: str = "cpu") -> pd.DataFrame:
    """One row per (set, clip, variant) with the evaluation metrics."""
    variants = inference_variants(config["inference"])
    rows = []
    for set_name, clips in sets.items():
        for (dataset, clip, _, ref), fps, duration_s, outputs in clip_activations(models, clips, device):
            for variant, spec in variants.items():
                if spec["source"] not in outputs:
                    continue
                acts, meta = outputs[spec["source"]]
                settings = {k: v for k, v in spec["settings"].items()}
                pred = run_method(spec["method"], acts, fps, duration_s,
                                  pos_weight=meta.get("pos_weight"), **settings)
                scores = evaluate_track(ref.beat_times, ref.downbeat_times, pred.beat_times,
                                        pred.downbeat_times, ref_bpm=ref.bpm,
                                        grid=None if pred.grid is None else pred.grid.to_label_json(clip, duration_s),
                                        trim_seconds=trim_seconds)
                rows.append({"set": set_name, "dataset": dataset, "clip": clip, "method": spec["method"],
                             "variant": variant, **scores})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="pretrained:synth-v2",
                        help="pretrained:<name> or a folder with crnn/model.pt and ltm/model.pt")
    parser.add_argument("--index", type=Path, action="append", default=[], help="a dataset_index.csv (repeatable)")
    parser.add_argument("--demo-test", action="store_true", help="also the default demo's test split")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml",
                        help="inference variants, demo and split settings (default: config.yaml)")
    parser.add_argument("--trim", type=float, default=5.0, help="evaluation.trim_seconds (s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, help="folder for per_track.csv")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(args.config.read_text())

    sets: dict[str, list] = {}
    for index_csv in args.index:
        sets[index_csv.parent.name] = list(index_clips(index_csv))
    if args.demo_test:
        from beatgrid.data.synth import synthesize_track, track_stem

        source = next(v for v in config["datasets"].values() if v["format"] == "synth")
        clips = []
        for i in demo_test_tracks(config):
            track = synthesize_track(i, int(source["seed"]), float(source["duration_s"]),
                                     int(config["features"]["sr"]))
            clips.append((f"demo:{track.style}", track_stem(i), track.audio,
                          Reference(track.beat_times, track.downbeat_times(), track.bpm)))
        sets["demo_test"] = clips
    started = time.perf_counter()
    per_track = evaluate_models(args.models, sets, config, args.trim)
    print(f"models: {args.models}; {per_track['clip'].nunique()} clips in {time.perf_counter() - started:.0f} s\n")
    for set_name, rows in per_track.groupby("set", sort=False):
        table = rows.groupby("variant", sort=False)[COLUMNS].mean()
        table.insert(0, "clips", rows.groupby("variant", sort=False)["clip"].nunique())
        print(f"#### {set_name}\n\n{table.to_markdown(floatfmt='.3f')}\n")
        by_source = rows.pivot_table(index="dataset", columns="variant", values="beat_f", aggfunc="mean")
        if len(by_source) > 1:
            print(f"Beat F per source:\n\n{by_source.to_markdown(floatfmt='.3f')}\n")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        per_track.to_csv(args.out / "per_track.csv", index=False)


if __name__ == "__main__":
    main()
