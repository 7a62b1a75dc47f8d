"""beatgrid.batch: inputs and their output names, failures that do not stop a batch, skipping."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from beatgrid.activations import load_track_activations
from beatgrid.analysis import DEFAULT_MIN_CONFIDENCE, decode
from beatgrid.batch import REKORDBOX_FILE, collect_jobs, parse_formats, predict_paths
from beatgrid.errors import UsageError
from tests.tiny_models import write_click_wav, write_tiny_models


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("models"))


def names(jobs) -> list[str]:
    return sorted(job.name for job in jobs)


def test_outputs_mirror_the_inputs_and_never_collide(tmp_path):
    music = tmp_path / "music"
    for rel in ("song.wav", "song.mp3", "album/01.flac", "album/.hidden.wav", "album/cover.jpg"):
        (music / rel).parent.mkdir(parents=True, exist_ok=True)
        (music / rel).write_bytes(b"x")
    jobs, missing = collect_jobs([music])
    assert names(jobs) == ["album/01", "song.mp3", "song.wav"] and missing == []  # stems, but not where they collide
    jobs, _ = collect_jobs([music / "song.wav", music / "song.mp3"])  # same stem, other extension
    assert names(jobs) == ["song.mp3", "song.wav"]
    jobs, _ = collect_jobs([music / "album", music / "song.wav", music / "album" / "01.flac"])
    assert names(jobs) == ["album/01", "song"]  # relative to the common folder, once each
    jobs, missing = collect_jobs([music / "song.wav", tmp_path / "nope.wav"])
    assert names(jobs) == ["song"] and missing == [(str(tmp_path / "nope.wav"),
                                                       f"{tmp_path / 'nope.wav'}: no such file or folder")]


def test_formats_are_parsed_and_checked():
    assert parse_formats("json, beats,json") == ("json", "beats")
    with pytest.raises(UsageError, match="unknown output format xml"):
        parse_formats("beats,xml")


def test_a_bad_file_is_reported_and_the_others_are_written(tmp_path, models_dir, caplog):
    inputs = [write_click_wav(tmp_path / "in" / "good1.wav"), tmp_path / "in" / "bad.wav",
              write_click_wav(tmp_path / "in" / "good2.wav")]
    inputs[1].write_bytes(b"RIFF" + bytes(64))
    result = predict_paths(inputs, tmp_path / "out", models=models_dir, device="cpu", progress=False)
    assert names(result.written) == ["good1", "good2"]
    ((failed_input, message),) = result.failed
    assert failed_input == str(inputs[1]) and message.startswith(f"{inputs[1]}: audio undecodable")
    assert "\n" not in message and message in caplog.text
    for name in ("good1", "good2"):
        label = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        assert label["fileName"] == f"{name}.wav"
        assert (tmp_path / "out" / f"{name}.beats").is_file()
    assert not (tmp_path / "out" / "bad.json").exists()


def test_skip_existing_runs_only_what_is_missing(tmp_path, models_dir):
    inputs = [write_click_wav(tmp_path / "in" / f"t{i}.wav", duration_s=2.0) for i in range(3)]
    out = tmp_path / "out"
    kwargs = dict(models=models_dir, device="cpu", progress=False, formats=("beats", "json", "rekordbox"))
    assert len(predict_paths(inputs, out, **kwargs).written) == 3
    (out / "t1.json").unlink()
    stamp = (out / "t0.json").stat().st_mtime_ns
    result = predict_paths(inputs, out, skip_existing=True, **kwargs)
    assert names(result.written) == ["t1"] and names(result.skipped) == ["t0", "t2"]
    assert (out / "t0.json").stat().st_mtime_ns == stamp
    xml = (out / REKORDBOX_FILE).read_text()
    assert xml.count("<TRACK TrackID") == 3  # the skipped tracks stay in the collection


def test_saved_activations_decode_to_the_same_beats(tmp_path, models_dir):
    path = write_click_wav(tmp_path / "clicks.wav")
    predict_paths([path], tmp_path / "out", models=models_dir, device="cpu", progress=False,
                  save_activations=True, method="crnn_grid")
    activations, fps, pos_weight = load_track_activations(tmp_path / "out" / "clicks.activations.npz")
    assert activations.shape[1] == 2 and pos_weight == pytest.approx([10.0, 40.0])
    again = decode(activations, fps, sf.info(str(path)).duration, "crnn_grid", pos_weight=pos_weight,
                   min_confidence=DEFAULT_MIN_CONFIDENCE)
    label = json.loads((tmp_path / "out" / "clicks.json").read_text())
    assert again.label["bpm"] == label["bpm"] and again.label["downbeatOffset"] == label["downbeatOffset"]


def test_no_audio_at_all_is_a_usage_error(tmp_path, models_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no audio files"):
        predict_paths([tmp_path / "empty"], tmp_path / "out", models=models_dir, device="cpu")


def test_progress_bar_and_debug_traceback(tmp_path, models_dir, capsys, caplog):
    good = write_click_wav(tmp_path / "good.wav", duration_s=2.0)
    (tmp_path / "bad.wav").write_bytes(b"RIFF" + bytes(64))
    predict_paths([good, tmp_path / "bad.wav"], tmp_path / "out", models=models_dir, device="cpu",
                  progress=True, debug=True)
    assert "beatgrid predict: 100%" in capsys.readouterr().err
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is not None  # --debug: the traceback of the failing file
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left
