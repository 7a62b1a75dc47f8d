"""beatgrid.analysis: the in-memory API (beatgrid.analyze), model loading and decoding."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import beatgrid
from beatgrid.analysis import (MIN_DURATION_S, Analysis, Models, analyze, check_settings, decode,
                               load_models, models_folder)
from beatgrid.audio import AudioError
from beatgrid.errors import DeviceUnavailableError, ModelFileError, UsageError
from beatgrid.pretrained import PretrainedModelError
from tests.synthetic_activations import constant_tempo_beats, make_track
from tests.tiny_models import click_track, write_tiny_models

FPS = 50.0


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def models(models_dir) -> Models:
    return load_models(models_dir, "crnn_dbn", "cpu")


def activations_at(bpm: float, duration_s: float = 30.0, **kwargs) -> np.ndarray:
    beats, positions = constant_tempo_beats(bpm, duration_s, offset_s=0.25, beats_per_bar=4)
    track = make_track(beats, positions, duration_s, FPS, rng=1, **kwargs)
    return np.stack([track.beat_activation, track.downbeat_activation], axis=1)


def test_package_exposes_analyze():
    assert beatgrid.analyze is analyze and beatgrid.Analysis is Analysis


def test_analyze_an_array_and_the_same_file_agree(tmp_path, models):
    audio = click_track(6.0, 44100)
    sf.write(tmp_path / "clicks.wav", audio, 44100, subtype="FLOAT")
    from_array = analyze(audio, sr=44100, models=models)
    from_file = analyze(tmp_path / "clicks.wav", models=models)
    assert isinstance(from_file, Analysis) and from_file.method == "crnn_dbn"
    np.testing.assert_allclose(from_file.activations, from_array.activations, atol=1e-5)
    np.testing.assert_array_equal(from_file.beats, from_array.beats)
    assert from_file.activations.shape == (int(6.0 * models.fps) + 1, 2)
    assert from_file.duration_s == pytest.approx(6.0)
    assert from_file.label["fileName"] == "clicks.wav"
    np.testing.assert_array_equal(from_file.downbeats, from_file.beats[from_file.beat_positions == 1])


def test_analyze_loads_models_by_folder_and_reuses_loaded_ones(models_dir):
    audio = click_track(3.0, 22050)
    by_folder = analyze(audio, sr=22050, models=models_dir, method="ltm_online", device="cpu")
    from beatgrid.analysis import _cached_models

    hits = _cached_models.cache_info().hits
    analyze(audio, sr=22050, models=models_dir, device="cpu")
    assert _cached_models.cache_info().hits == hits + 1  # loaded once per folder and device
    loaded = load_models(models_dir, "ltm_online", "cpu")
    assert loaded.pos_weight("ltm_online") == pytest.approx([8.0, 30.0])  # the LTM's outputs are decoded
    assert loaded.pos_weight("crnn_dbn") == pytest.approx([10.0, 40.0])
    np.testing.assert_array_equal(analyze(audio, sr=22050, models=loaded, method="ltm_online").beats,
                                  by_folder.beats)


def test_online_methods_say_when_the_crnn_under_them_is_not_causal(tmp_path, caplog):
    from beatgrid.analysis import _warn_not_causal_from_audio
    from beatgrid.models import build_model, save_model
    from tests.tiny_models import TINY_CRNN

    bidirectional = load_models(write_tiny_models(tmp_path / "bi"), "ltm_online", "cpu")
    causal_dir = write_tiny_models(tmp_path / "causal")
    meta = torch.load(causal_dir / "crnn" / "model.pt", weights_only=False)
    save_model(causal_dir / "crnn" / "model.pt", build_model("crnn", {**TINY_CRNN, "causal": True}),
               {k: meta[k] for k in ("features", "pos_weight")})
    causal = load_models(causal_dir, "ltm_online", "cpu")
    assert not bidirectional.crnn_causal and causal.crnn_causal
    _warn_not_causal_from_audio.cache_clear()
    audio = click_track(2.0, 22050)
    with caplog.at_level("WARNING", logger="beatgrid.analysis"):
        analyze(audio, sr=22050, models=bidirectional, method="crnn_dbn")  # offline: nothing to say
        analyze(audio, sr=22050, models=causal, method="ltm_online")  # causal from audio
        assert not caplog.records
        for _ in range(2):
            analyze(audio, sr=22050, models=bidirectional, method="ltm_online")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "bidirectional" in warnings[0] and str(tmp_path / "bi") in warnings[0]


def test_one_load_serves_every_method_and_ltm_methods_need_the_ltm(models, models_dir, tmp_path):
    audio = click_track(2.0)
    assert models.ltm is not None  # loaded for crnn_dbn, usable for ltm_* too
    analyze(audio, sr=44100, models=models, method="ltm_grid")
    import shutil

    shutil.copytree(models_dir / "crnn", tmp_path / "crnn_only" / "crnn")
    crnn_only = load_models(tmp_path / "crnn_only", "crnn_dbn", "cpu")
    with pytest.raises(UsageError, match="needs the LTM"):
        analyze(audio, sr=44100, models=crnn_only, method="ltm_grid")
    with pytest.raises(ModelFileError, match="ltm/model.pt: model file not found"):
        load_models(tmp_path / "crnn_only", "ltm_online", "cpu")


def test_grid_method_gives_the_beatgrid_as_beats():
    activations = activations_at(124.0)
    analysis = decode(activations, FPS, 30.0, "crnn_grid")
    grid = analysis.beatgrid
    assert grid.bpm == pytest.approx(124.0, abs=0.05)
    np.testing.assert_allclose(analysis.beats, grid.beat_times(30.0))
    assert analysis.label["bpm"] == round(grid.bpm, 4) and analysis.reason is None


def test_every_method_comes_with_a_beatgrid():
    analysis = decode(activations_at(97.0), FPS, 30.0, "crnn_dbn")
    assert analysis.beatgrid.bpm == pytest.approx(97.0, abs=0.1)
    assert analysis.label["gridSource"] == "median_beat_interval"


def test_silence_has_no_beats_and_no_tempo_with_a_reason(models):
    analysis = analyze(np.zeros(3 * 44100, np.float32), sr=44100, models=models)
    assert len(analysis.beats) == 0 and analysis.beatgrid is None
    assert "silent" in analysis.reason
    assert analysis.label["bpm"] is None and analysis.label["reason"] == analysis.reason


def test_an_unsteady_beat_reports_no_tempo_below_min_confidence():
    rng = np.random.default_rng(0)
    noise = rng.uniform(0.0, 0.3, size=(1500, 2)).astype(np.float32)
    refused = decode(noise, FPS, min_confidence=0.99, method="crnn_grid")
    assert refused.beatgrid is None and refused.label["bpm"] is None
    assert "confidence" in refused.reason and len(refused.beats) == 0
    steady = decode(activations_at(120.0), FPS, min_confidence=0.5, method="crnn_grid")
    assert steady.beatgrid is not None and steady.label["bpm"] == pytest.approx(120.0, abs=0.05)


def test_too_short_audio_is_an_input_error(tmp_path, models):
    path = tmp_path / "blip.wav"
    sf.write(path, np.full(200, 0.5, np.float32), 44100)
    with pytest.raises(AudioError, match=r"too short: .*at least") as excinfo:
        analyze(path, models=models)
    assert excinfo.value.path == str(path)
    assert MIN_DURATION_S * 22050 > 200


@pytest.mark.parametrize("kwargs, message", [
    ({"bpm_min": 200.0, "bpm_max": 60.0}, "bpm_min < bpm_max"),
    ({"method": "crnn_magic"}, "unknown inference method"),
    ({"min_confidence": 2.0}, "min_confidence"),
])
def test_settings_are_checked_before_the_audio_is_read(tmp_path, models, kwargs, message):
    with pytest.raises(UsageError, match=message):
        analyze(tmp_path / "does-not-exist.wav", models=models, **kwargs)


def test_arrays_need_their_rate_and_files_bring_theirs(tmp_path, models):
    with pytest.raises(UsageError, match="sr="):
        analyze(np.zeros(44100), models=models)
    with pytest.raises(UsageError, match="array"):
        analyze(tmp_path / "x.wav", sr=44100, models=models)


def test_models_are_named_by_folder_shipped_name_or_prefix(models_dir, tmp_path):
    assert models_folder(models_dir) == models_dir
    with pytest.raises(PretrainedModelError, match="neither a folder nor a shipped model"):
        models_folder("no-such-model")
    with pytest.raises(PretrainedModelError, match="no shipped model 'no-such-model'"):
        models_folder("pretrained:no-such-model")
    with pytest.raises(ModelFileError, match="model file not found"):
        load_models(tmp_path / "empty", device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a torch without CUDA")
def test_cuda_without_cuda_is_a_clear_error(models_dir):
    with pytest.raises(DeviceUnavailableError, match="'cuda' requested but .*use device auto or cpu"):
        load_models(models_dir, device="cuda")


def test_check_settings_accepts_the_defaults():
    check_settings("crnn_dbn", 60.0, 200.0, 0.1)
