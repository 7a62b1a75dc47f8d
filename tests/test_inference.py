"""beatgrid.inference: running the methods, their label JSON and the workflow's prediction files."""

from __future__ import annotations

import json

import h5py
import mir_eval
import numpy as np
import pandas as pd
import pytest

from beatgrid.annotations import read_beats_file
from beatgrid.inference import beats_label, predict_store, run_method, write_prediction
from tests.synthetic_activations import bump_activation, constant_tempo_beats, make_track
from tests.index_table import index_table

FPS = 50.0


@pytest.fixture(scope="module")
def track():
    beats, positions = constant_tempo_beats(123.45, 40.0, offset_s=0.31, beats_per_bar=4)
    return make_track(beats, positions, 40.0, FPS, rng=3, noise=0.05, missing=0.05, extra=0.05)


def activations_of(track) -> np.ndarray:
    return np.stack([track.beat_activation, track.downbeat_activation], axis=1)


def write_tracks_csv(path, track_ids) -> pd.DataFrame:
    tracks = index_table(track_ids, duration_s=40.0)
    tracks.to_csv(path, index=False)
    return tracks


def test_run_method_takes_variant_names_and_refuses_unknown_methods_and_settings(track):
    plain = run_method("crnn_grid", activations_of(track), FPS, 40.0, bpm_min=70.0)
    variant = run_method("crnn_grid@bpm_min=70", activations_of(track), FPS, 40.0, bpm_min=70.0)
    np.testing.assert_array_equal(plain.beat_times, variant.beat_times)
    with pytest.raises(ValueError, match="unknown inference method 'crnn_magic'"):
        run_method("crnn_magic", activations_of(track), FPS, 40.0)
    with pytest.raises(TypeError, match="bpm_mni"):
        run_method("crnn_grid", activations_of(track), FPS, 40.0, bpm_mni=70.0)


@pytest.mark.parametrize("method", ["crnn_peaks", "crnn_dbn", "crnn_grid", "ltm_online"])
def test_every_method_finds_the_beats_of_clean_activations(track, method):
    prediction = run_method(method, activations_of(track), FPS, 40.0)
    f = mir_eval.beat.f_measure(track.beat_times, prediction.beat_times)
    assert f > 0.9, (method, f)
    assert prediction.beat_positions.shape == prediction.beat_times.shape
    downbeat_f = mir_eval.beat.f_measure(track.beat_times[track.positions == 1], prediction.downbeat_times)
    assert downbeat_f > 0.8, (method, downbeat_f)


def test_grid_prediction_label_is_the_fitted_grid(track):
    prediction = run_method("crnn_grid", activations_of(track), FPS, 40.0)
    label = beats_label(prediction, "song.wav", 40.0)
    assert label["gridSource"] == "fit_beatgrid"
    assert label["bpm"] == pytest.approx(123.45, abs=0.02)
    for key in ("bpm", "downbeatOffset", "duration", "confidence"):  # rounded like the other methods'
        assert label[key] == round(label[key], 4)
    assert label["beatsPerBar"] == 4
    assert abs(label["downbeatOffset"] - 0.31) < 0.01


def test_beats_label_of_a_non_grid_method_describes_its_beats():
    times = np.arange(0.5, 20, 0.5)
    positions = (np.arange(len(times)) % 3) + 1
    prediction = run_method("crnn_peaks", np.zeros((1000, 2), np.float32), FPS, 20.0)
    assert len(prediction.beat_times) == 0
    label = beats_label(prediction, "x.wav", 20.0)
    assert label["bpm"] is None and label["confidence"] == 0.0
    from beatgrid.inference import Prediction

    label = beats_label(Prediction(times, positions), "x.wav", 20.0)
    assert label["bpm"] == pytest.approx(120.0)
    assert label["beatsPerBar"] == 3 and label["downbeatOffset"] == pytest.approx(0.5)
    assert label["gridSource"] == "median_beat_interval"


def test_write_prediction_round_trip(tmp_path, track):
    prediction = run_method("crnn_dbn", activations_of(track), FPS, 40.0)
    write_prediction(tmp_path, "t1", prediction, "t1.wav", 40.0)
    annotation = read_beats_file(tmp_path / "t1.beats")
    np.testing.assert_allclose(annotation.beat_times, prediction.beat_times, atol=1e-5)
    np.testing.assert_array_equal(annotation.beat_positions, prediction.beat_positions)
    label = json.loads((tmp_path / "t1.json").read_text())
    assert {"fileName", "bpm", "downbeatOffset", "duration", "beatsPerBar", "confidence"} <= set(label)


def test_predict_store_writes_every_track_and_refuses_missing_ones(tmp_path, track):
    store = tmp_path / "000.h5"
    with h5py.File(store, "w") as h5:
        h5.attrs["fps"] = FPS
        for track_id in ("a", "b"):
            h5.create_dataset(f"tracks/{track_id}/activations", data=activations_of(track))
    tracks = write_tracks_csv(tmp_path / "tracks.csv", ["a", "b"])
    assert predict_store("crnn_grid", {}, [store], tmp_path / "tracks.csv", tmp_path / "out", progress=False) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.beats", "a.json", "b.beats", "b.json"]
    pd.concat([tracks, tracks.iloc[[0]].assign(track_id="c")]).to_csv(tmp_path / "tracks.csv", index=False)
    with pytest.raises(RuntimeError, match="no activations for 1 indexed tracks"):
        predict_store("crnn_grid", {}, [store], tmp_path / "tracks.csv", tmp_path / "out2", progress=False)


def overconfident_offbeats(bpm: float, duration_s: float = 40.0) -> np.ndarray:
    """[T, 2] outputs of a network trained with pos_weight ~13/51 that half-believes the
    off-beats: beats at 0.97-0.99, off-beats at 0.85-0.92 (calibrated: ~0.8 and ~0.4)."""
    beats, positions = constant_tempo_beats(bpm, duration_s, 0.3)
    n_frames = int(duration_s * FPS) + 1
    rng = np.random.default_rng(0)
    beat = np.maximum(bump_activation(beats, n_frames, FPS, rng.uniform(0.97, 0.99, len(beats))),
                      bump_activation(beats + 30.0 / bpm, n_frames, FPS, rng.uniform(0.85, 0.92, len(beats))))
    down = bump_activation(beats[positions == 1], n_frames, FPS, 0.97)
    return np.stack([beat, down], axis=1).astype(np.float32)


@pytest.mark.parametrize("bpm", [75.0, 85.0, 95.0])
def test_grid_undoes_the_training_pos_weight_before_choosing_the_octave(bpm):
    activations = overconfident_offbeats(bpm)
    raw = run_method("crnn_grid", activations, FPS, 40.0)
    calibrated = run_method("crnn_grid", activations, FPS, 40.0, pos_weight=[13.3, 50.9])
    assert raw.grid.bpm == pytest.approx(2 * bpm, abs=0.05)  # read as probabilities: off-beats are beats
    assert calibrated.grid.bpm == pytest.approx(bpm, abs=0.02)
    # peak picking is left alone: its thresholds are chosen on the raw outputs
    np.testing.assert_array_equal(run_method("crnn_peaks", activations, FPS, 40.0).beat_times,
                                  run_method("crnn_peaks", activations, FPS, 40.0, pos_weight=[13.3, 50.9]).beat_times)


def test_predict_store_calibrates_with_the_store_pos_weight(tmp_path):
    write_tracks_csv(tmp_path / "tracks.csv", ["a"])
    bpms = {}
    for name, pos_weight in (("raw", None), ("weighted", [13.3, 50.9])):
        store = tmp_path / f"{name}.h5"
        with h5py.File(store, "w") as h5:
            h5.attrs["fps"] = FPS
            if pos_weight is not None:
                h5.attrs["pos_weight"] = pos_weight
            h5.create_dataset("tracks/a/activations", data=overconfident_offbeats(80.0))
        predict_store("crnn_grid", {}, [store], tmp_path / "tracks.csv", tmp_path / name, progress=False)
        bpms[name] = json.loads((tmp_path / name / "a.json").read_text())["bpm"]
    assert bpms["raw"] == pytest.approx(160.0, abs=0.05)
    assert bpms["weighted"] == pytest.approx(80.0, abs=0.02)


def test_predict_store_warns_when_it_cannot_calibrate(tmp_path, track, caplog):
    write_tracks_csv(tmp_path / "tracks.csv", ["a"])
    store = tmp_path / "000.h5"
    with h5py.File(store, "w") as h5:
        h5.attrs["fps"] = FPS
        h5.create_dataset("tracks/a/activations", data=activations_of(track))
    for method, warned in (("crnn_peaks", False), ("crnn_grid", True)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="beatgrid.inference"):
            predict_store(method, {}, [store], tmp_path / "tracks.csv", tmp_path / method, progress=False)
        assert ("no pos_weight recorded" in caplog.text) == warned
        if warned:
            assert str(store) in caplog.text and "retrain" in caplog.text
