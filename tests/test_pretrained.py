"""The shipped model (beatgrid/pretrained/synth-v2): it loads, it tracks a synthetic track
it never saw, it was trained by configs/pretrain.yaml, and that config runs (tiny) in CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from beatgrid import pretrained
from beatgrid.activations import compute_activations
from beatgrid.training.crnn import crnn_model_config
from beatgrid.data.synth import synthesize_track, track_style
from beatgrid.evaluation import evaluate_track
from beatgrid.features import MelConfig, log_mel
from beatgrid.inference import run_method
from beatgrid.models import load_model
from beatgrid.models.ltm import ltm_model_config
from beatgrid.decoding.streaming import ltm_probabilities
from beatgrid.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]
PRETRAIN = REPO / "configs" / "pretrain.yaml"
PRETRAIN_TINY = REPO / "tests" / "configs" / "pretrain_tiny.yaml"
MAX_BYTES = 5_000_000  # "a few MB at most"


def _load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _effective_block(config: dict, kind: str) -> dict:
    """The ``crnn:``/``ltm:`` block a run of ``config`` trains with (config.yaml underneath)."""
    return {**_load_yaml(REPO / "config.yaml")[kind], **config.get(kind, {})}


def assert_trained_by(models_dir: Path, config: dict) -> None:
    """The model files in ``models_dir`` hold the architecture, training settings and
    features that ``config`` asks for."""
    features = {**_load_yaml(REPO / "config.yaml")["features"], **config.get("features", {})}
    crnn, crnn_meta = load_model(models_dir / "crnn" / "model.pt")
    ltm, ltm_meta = load_model(models_dir / "ltm" / "model.pt")
    for kind, meta in (("crnn", crnn_meta), ("ltm", ltm_meta)):
        block = _effective_block(config, kind)
        assert TrainConfig.from_dict(meta["train_config"]).result_dict() == \
            TrainConfig.from_dict(block).result_dict(), kind
    expected_crnn = crnn_model_config(_effective_block(config, "crnn"), features["n_mels"])
    assert crnn_meta["model_config"] == yaml.safe_load(yaml.safe_dump(
        {k: list(v) if isinstance(v, tuple) else v for k, v in expected_crnn.items()}))
    ltm_kind, expected_ltm = ltm_model_config(_effective_block(config, "ltm"))
    assert ltm_meta["kind"] == ltm_kind and ltm_meta["model_config"] == expected_ltm
    assert ltm_meta["input_source"] == _effective_block(config, "ltm")["input_source"]
    mel = MelConfig.from_dict(crnn_meta["features"])
    assert (mel.sr, mel.hop_length, mel.n_fft, mel.n_mels) == \
        (features["sr"], features["hop_length"], features["n_fft"], features["n_mels"])


# ---------------------------------------------------------------------------- the shipped model


def test_the_shipped_model_loads_through_beatgrid_pretrained():
    folder = pretrained.models_dir()
    assert pretrained.DEFAULT_NAME in pretrained.available()
    for kind in ("crnn", "ltm"):
        path = pretrained.resolve_model_file(f"{pretrained.PREFIX}{pretrained.DEFAULT_NAME}", kind)
        assert path == folder / kind / "model.pt"
        assert path.stat().st_size < MAX_BYTES
        model, meta = load_model(path)
        assert meta["pos_weight"] and meta["val_metrics"]["val_downbeat_f"] > 0
    assert (folder / "MODEL_CARD.md").is_file()


def test_the_shipped_model_was_trained_by_configs_pretrain_yaml():
    config = _load_yaml(PRETRAIN)
    assert_trained_by(pretrained.models_dir(), config)
    # the card states the recipe verbatim
    card = (pretrained.models_dir() / "MODEL_CARD.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", card, re.S)
    assert block and yaml.safe_load(block.group(1)) == config


def _unseen_track(style: str, duration_s: float = 20.0):
    """A constant-tempo demo track (seed 0; the shipped model trained on another seed)."""
    for index in range(200):
        if track_style(index, 0) == style:
            track = synthesize_track(index, 0, duration_s)
            if track.bpm is not None:
                return track
    raise AssertionError(f"no constant-tempo {style} track in the first 200")


@pytest.mark.parametrize("style", ["rock", "country", "latin"])
def test_the_shipped_model_finds_the_beats_and_tempo_of_a_synthetic_track(style):
    track = _unseen_track(style)
    folder = pretrained.models_dir()
    crnn, meta = load_model(folder / "crnn" / "model.pt")
    ltm, ltm_meta = load_model(folder / "ltm" / "model.pt")
    mel_config = MelConfig.from_dict(meta["features"])
    activations = compute_activations(crnn, log_mel(track.audio, mel_config))
    dbn = run_method("crnn_dbn", activations, mel_config.fps, track.duration_s, pos_weight=meta["pos_weight"])
    scores = evaluate_track(track.beat_times, track.downbeat_times(), dbn.beat_times, dbn.downbeat_times,
                            ref_bpm=track.bpm)
    assert scores["beat_f"] >= 0.95, scores
    assert scores["tempo_acc1"] == 1.0, scores
    grid = run_method("crnn_grid", activations, mel_config.fps, track.duration_s, pos_weight=meta["pos_weight"]).grid
    assert grid.bpm == pytest.approx(track.bpm, rel=0.02)
    online = run_method("ltm_online", ltm_probabilities(ltm, activations), mel_config.fps, track.duration_s,
                        pos_weight=ltm_meta["pos_weight"])
    assert evaluate_track(track.beat_times, None, online.beat_times, None)["beat_f"] >= 0.8


# ---------------------------------------------------------------------------- the recipe in CI


def test_the_tiny_pretrain_config_is_the_real_one_scaled_down():
    real, tiny = _load_yaml(PRETRAIN), _load_yaml(PRETRAIN_TINY)
    assert tiny.keys() == real.keys()
    for block in ("crnn", "ltm", "split"):
        assert tiny[block].keys() == real[block].keys(), block
    (real_synth,), (tiny_synth,) = real["datasets"].values(), tiny["datasets"].values()
    assert tiny_synth.keys() == real_synth.keys()
    assert tiny_synth["format"] == "synth" and tiny_synth.get("styles") == real_synth.get("styles")
    assert tiny_synth["n_tracks"] < real_synth["n_tracks"]


@pytest.mark.workflow
def test_a_tiny_pretrain_config_trains_both_models_end_to_end(tmp_path):
    outputs = ["results/models/crnn/model.pt", "results/models/ltm/model.pt"]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(PRETRAIN_TINY), "--cores", "2", *outputs],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert_trained_by(tmp_path / "results" / "models", _load_yaml(PRETRAIN_TINY))
    tracks = pd.read_csv(tmp_path / "results" / "index" / "tracks.csv")
    assert len(tracks) == _load_yaml(PRETRAIN_TINY)["datasets"]["synth"]["n_tracks"]
