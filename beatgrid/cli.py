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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    from .audio import AudioError
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
    except (AudioError, FileNotFoundError) as error:
        print(f"beatgrid: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
