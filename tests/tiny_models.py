"""Tiny untrained CRNN + LTM model folders and click tracks, for tests of the prediction plumbing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from beatgrid.features import MelConfig
from beatgrid.models import build_model, save_model

#: Model sizes small enough to build and run in milliseconds.
TINY_CRNN = {"n_mels": 128, "conv_channels": (4,), "rnn_hidden": 4, "rnn_layers": 1}
TINY_LTM = {"channels": 4, "kernel_size": 2, "n_layers": 1}


def write_tiny_models(folder: str | Path, seed: int = 0) -> Path:
    """``folder/crnn/model.pt`` and ``folder/ltm/model.pt`` as the workflow writes them."""
    folder = Path(folder)
    torch.manual_seed(seed)
    mel = MelConfig()
    features = {**mel.as_dict(), "fps": mel.fps}
    save_model(folder / "crnn" / "model.pt", build_model("crnn", TINY_CRNN),
               {"features": features, "pos_weight": [10.0, 40.0]})
    save_model(folder / "ltm" / "model.pt", build_model("tcn", TINY_LTM),
               {"features": features, "pos_weight": [8.0, 30.0]})
    return folder


def click_track(duration_s: float = 6.0, sr: int = 44100, bpm: float = 120.0) -> np.ndarray:
    """Stereo ``[n, 2]`` clicks (1 kHz bursts) on every beat at ``bpm``."""
    t = np.arange(int(duration_s * sr)) / sr
    clicks = np.zeros_like(t)
    clicks[(np.arange(0, duration_s, 60.0 / bpm) * sr).astype(int)] = 1.0
    audio = np.convolve(clicks, np.exp(-np.arange(400) / 60.0))[: len(t)] * np.sin(2 * np.pi * 1000 * t)
    return (np.stack([audio, audio], axis=1) * 0.5).astype(np.float32)


def write_click_wav(path: str | Path, duration_s: float = 6.0, sr: int = 44100) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, click_track(duration_s, sr), sr)
    return path
