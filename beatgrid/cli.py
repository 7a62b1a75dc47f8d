"""The `beatgrid` command: run trained models on audio outside the workflow."""

from __future__ import annotations

import argparse
import logging
import sys

from .inference import METHODS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beatgrid", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict",
        help="beats, downbeats and a beatgrid for audio files",
        description="Writes <name>.beats (time<TAB>position, 1 = downbeat) and <name>.json "
        "(fileName, bpm, downbeatOffset, duration, beatsPerBar, confidence) per audio file.",
    )
    predict.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, mp3, m4a, ...)")
    predict.add_argument("--models", default="results/models", help="folder with crnn/model.pt (and ltm/model.pt)")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument("--method", default="crnn_grid", choices=METHODS)
    predict.add_argument("--bpm-min", type=float, default=60.0)
    predict.add_argument("--bpm-max", type=float, default=200.0)
    predict.add_argument("--threshold", type=float, default=0.5, help="peak threshold (peaks and online methods)")
    predict.add_argument("--device", default="cpu", help="cpu or cuda")

    train = commands.add_parser(
        "train-crnn",
        help="train the CRNN from mel/target stores outside the workflow (e.g. imported Beat This! spectrograms)",
        description="Trains with the crnn: block of a config file on HDF5 stores such as those written by "
        "`python -m beatgrid.data.beat_this_import`; writes model.pt, history.csv and curves.png. "
        "Use the model in the workflow with crnn.init_from to fine-tune it on your own tracks.",
    )
    train.add_argument("--mels", nargs="+", required=True, help="mel stores (.h5)")
    train.add_argument("--targets", nargs="+", required=True, help="target stores (.h5)")
    train.add_argument("--tracks", nargs="+", required=True,
                       help="track tables with track_id and split (train/val) columns (several are concatenated)")
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--config", default=None, help="config file whose crnn: block to use (default: config.yaml's)")
    return parser


def _concat_tracks(paths: list[str], out_dir: str) -> str:
    """One track table for training: the file itself, or several concatenated into out_dir."""
    if len(paths) == 1:
        return paths[0]
    from pathlib import Path

    import pandas as pd

    out = Path(out_dir) / "tracks.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([pd.read_csv(p, dtype=str) for p in paths], ignore_index=True).to_csv(out, index=False)
    return str(out)


def _crnn_config(path: str | None) -> dict:
    from pathlib import Path

    import yaml

    default = Path(__file__).resolve().parents[1] / "config.yaml"
    config = yaml.safe_load(Path(path or default).read_text()) or {}
    if "crnn" not in config:
        raise FileNotFoundError(f"{path or default}: no crnn: block")
    return config["crnn"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.command == "train-crnn":
        from .crnn_training import train_crnn

        try:
            cfg = _crnn_config(args.config)
            tracks_csv = _concat_tracks(args.tracks, args.out)
            train_crnn(args.mels, args.targets, tracks_csv, cfg, args.out)
        except (FileNotFoundError, ValueError) as error:
            print(f"beatgrid: error: {error}", file=sys.stderr)
            return 2
        return 0
    from .errors import InputFileError
    from .inference import predict_files

    try:
        predict_files(
            args.audio,
            args.models,
            args.out,
            method=args.method,
            device=args.device,
            bpm_min=args.bpm_min,
            bpm_max=args.bpm_max,
            peak_threshold=args.threshold,
            online_threshold=args.threshold,
        )
    except (InputFileError, FileNotFoundError) as error:
        print(f"beatgrid: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
