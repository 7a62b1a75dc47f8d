"""beatgrid.methods: the one catalogue of inference methods and what the rest of beatgrid reads from it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import yaml

from beatgrid.methods import (
    DEFAULT_METHOD,
    GRID,
    METHODS,
    SETTING_NAMES,
    SOURCES,
    Prediction,
    Settings,
    base_method,
    get_method,
)
from tests.synthetic_activations import constant_tempo_beats, make_track

REPO = Path(__file__).resolve().parents[1]
FPS = 50.0


def test_every_method_names_a_known_store_and_settings():
    assert DEFAULT_METHOD in METHODS
    for name, method in METHODS.items():
        assert method.name == name
        assert method.source in SOURCES
        assert set(method.settings) <= set(SETTING_NAMES)
        assert method.help and "\n" not in method.help


def test_the_config_schema_has_exactly_the_decoder_settings():
    schema = yaml.safe_load((REPO / "config.schema.yaml").read_text())
    inference = schema["properties"]["inference"]["properties"]
    assert set(inference) - {"methods"} == set(SETTING_NAMES)
    assert [f.name for f in fields(Settings)] == list(SETTING_NAMES)


def test_get_method_reads_variant_names_and_names_the_known_methods():
    assert get_method("crnn_grid@bpm_min=70,bpm_max=180") is METHODS["crnn_grid"]
    assert base_method("ltm_peaks@peak_threshold=0.3") == "ltm_peaks"
    with pytest.raises(ValueError, match="unknown inference method 'crnn_magic'; known: crnn_dbn, "):
        get_method("crnn_magic")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_decoder_returns_beats_with_positions(name):
    beats, positions = constant_tempo_beats(120.0, 20.0, beats_per_bar=4)
    track = make_track(beats, positions, 20.0, FPS, rng=0, noise=0.02)
    activations = np.stack([track.beat_activation, track.downbeat_activation], axis=1)
    method = METHODS[name]
    prediction = method.decoder.decode(activations, FPS, 20.0, Settings())
    assert isinstance(prediction, Prediction)
    assert prediction.beat_positions.dtype.kind == "i"
    assert prediction.beat_positions.shape == prediction.beat_times.shape
    assert len(prediction.beat_times) > 30
    assert (prediction.grid is not None) == (method.decoder is GRID)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_decoder_lists_exactly_the_settings_it_reads(name):
    """A setting the decoder reads but does not list never reaches it from `inference:`
    (bpm_max stayed 200 for the peak pickers whatever the config said)."""
    read: set[str] = set()

    class RecordingSettings:
        def __getattr__(self, key: str):
            read.add(key)
            return getattr(Settings(), key)

    beats, positions = constant_tempo_beats(120.0, 20.0, beats_per_bar=4)
    track = make_track(beats, positions, 20.0, FPS, rng=0, noise=0.02)
    activations = np.stack([track.beat_activation, track.downbeat_activation], axis=1)
    METHODS[name].decoder.decode(activations, FPS, 20.0, RecordingSettings())
    assert read == set(METHODS[name].settings)


def test_the_peak_threshold_setting_reaches_the_peak_picker():
    beats, positions = constant_tempo_beats(120.0, 20.0, beats_per_bar=4)
    track = make_track(beats, positions, 20.0, FPS, rng=0, beat_heights=(0.4, 0.4))
    activations = np.stack([track.beat_activation, track.downbeat_activation], axis=1)
    decode = METHODS["crnn_peaks"].decoder.decode
    assert len(decode(activations, FPS, 20.0, Settings(peak_threshold=0.3)).beat_times) > 30
    assert len(decode(activations, FPS, 20.0, Settings(peak_threshold=0.5)).beat_times) == 0


def test_the_catalogue_is_read_without_heavy_imports():
    """The Snakefile reads it (through beatgrid.workflow) while planning every job."""
    code = ("import sys, beatgrid.workflow, beatgrid.methods; "
            "print(sorted(m for m in ('torch', 'scipy', 'librosa', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_ltm_online_decides_as_the_streaming_tracker_with_the_dbn_rule():
    """The causal method's beats are those a live stream gives: calibrated probabilities,
    forward filtering frame by frame (beatgrid.decoding.streaming.OnlineBeatTracker)."""
    from beatgrid.decoding.streaming import OnlineBeatTracker
    from beatgrid.inference import run_method

    beats, positions = constant_tempo_beats(131.0, 20.0, 0.2, beats_per_bar=3)
    track = make_track(beats, positions, 20.0, FPS, rng=1, noise=0.05)
    activations = np.stack([track.beat_activation, track.downbeat_activation], axis=1)
    pos_weight = (3.0, 6.0)
    prediction = run_method("ltm_online", activations, FPS, 20.0, pos_weight=pos_weight, bpm_min=70.0)
    events = OnlineBeatTracker(None, FPS, rule="dbn", pos_weight=pos_weight, bpm_min=70.0).process(activations)
    assert len(events) > 30
    np.testing.assert_allclose(prediction.beat_times, [event.time_s for event in events])
    np.testing.assert_array_equal(prediction.beat_positions, [event.bar_position for event in events])
