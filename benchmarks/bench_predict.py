"""Speed of `beatgrid predict` on CPU: model loading, decoding and analysis per file.

Renders demo tracks (30 s each, as wav and as m4a), then times
:func:`beatgrid.analysis.load_models` once and :func:`beatgrid.batch.predict_paths` per
method over all of them. Prints a Markdown table with the machine it ran on.

Run from the repository root after ``pip install -e .`` (or with ``PYTHONPATH=.``)::

    python benchmarks/bench_predict.py                       # the shipped model, 8 tracks
    python benchmarks/bench_predict.py --models results/models --tracks 16 --threads 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from beatgrid.analysis import decode, load_models
from beatgrid.batch import predict_paths
from beatgrid.data.synth import synthesize_track
from beatgrid.methods import METHODS
from beatgrid.provenance import machine_description
from beatgrid.threads import cap_threads


def write_tracks(folder: Path, n_tracks: int, duration_s: float) -> float:
    """``n_tracks`` demo tracks as ``.wav`` and ``.m4a`` (half each); returns the seconds of audio."""
    import av

    for index in range(n_tracks):
        track = synthesize_track(index, seed=7, duration_s=duration_s, sr=44100)
        if index % 2 == 0:
            sf.write(folder / f"t{index:03d}.wav", track.audio, track.sr)
            continue
        with av.open(str(folder / f"t{index:03d}.m4a"), "w") as container:
            stream = container.add_stream("aac", rate=track.sr, layout="mono")
            for start in range(0, len(track.audio), 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(track.audio[None, start:start + 1024]),
                                                   format="fltp", layout="mono")
                frame.sample_rate = track.sr
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return n_tracks * duration_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None, help="models folder or shipped name (default: the shipped model)")
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per track")
    parser.add_argument("--methods", nargs="+", default=["crnn_dbn", "crnn_grid", "ltm_online"],
                        choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=None, help="compute threads (default: all CPUs)")
    args = parser.parse_args()
    threads = cap_threads(args.threads, torch=True)

    start = time.perf_counter()
    models = load_models(args.models, device="cpu")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    for method in args.methods:  # numba's compiled DBN is loaded (or compiled) on first use
        decode(np.full((500, 2), 0.1, np.float32), models.fps, method=method)
    warm_s = time.perf_counter() - start
    print(f"{machine_description()}, {threads} threads; models {models.folder}; "
          f"{args.tracks} tracks x {args.duration:g} s (wav and m4a); once per process: model loading "
          f"{load_s:.2f} s, decoders' first call {warm_s:.2f} s\n")
    print("| method | files | wall s | s per file | x real time |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        audio_dir = Path(tmp) / "audio"
        audio_dir.mkdir()
        audio_s = write_tracks(audio_dir, args.tracks, args.duration)
        for method in args.methods:
            start = time.perf_counter()
            result = predict_paths([audio_dir], Path(tmp) / method, models=models, method=method,
                                   progress=False, formats=("beats", "json"))
            wall = time.perf_counter() - start
            n = len(result.written)
            print(f"| {method} | {n} | {wall:.1f} | {wall / max(n, 1):.2f} | {audio_s / wall:.0f} |")


if __name__ == "__main__":
    main()
