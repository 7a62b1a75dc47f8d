"""The `beatgrid` command line: arguments, help, exit codes and error reporting."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from beatgrid import __version__
from beatgrid.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, build_parser, main
from beatgrid.errors import ModelFileError


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"beatgrid {__version__}"


def test_predict_help_shows_defaults_and_every_method(capsys):
    from beatgrid.methods import METHODS

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    assert "(default: 60.0)" in text
    for name, method in METHODS.items():
        assert name in text and method.help.split()[0] in text


def test_bpm_range_is_checked_before_any_audio_is_read(tmp_path, capsys, monkeypatch):
    import beatgrid.audio

    def no_decoding(*args, **kwargs):
        raise AssertionError("audio decoded before the arguments were checked")

    monkeypatch.setattr(beatgrid.audio, "load_audio", no_decoding)
    rc = main(["predict", str(tmp_path / "song.wav"), "--out", str(tmp_path / "out"),
               "--bpm-min", "200", "--bpm-max", "60"])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE
    assert err.count("\n") == 1 and "--bpm-min (200) must be below --bpm-max (60)" in err


def test_debug_is_accepted_before_and_after_the_subcommand():
    parser = build_parser()
    assert parser.parse_args(["--debug", "predict", "a.wav", "--out", "o"]).debug
    assert parser.parse_args(["predict", "a.wav", "--out", "o", "--debug"]).debug
    assert not parser.parse_args(["predict", "a.wav", "--out", "o"]).debug


# ------------------------------------------------------------------ predict on real files
@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from tests.tiny_models import write_tiny_models

    return str(write_tiny_models(tmp_path_factory.mktemp("models")))


def predict(tmp_path, models_dir, *args: str) -> int:
    return main(["predict", *args, "--out", str(tmp_path / "out"), "--models", models_dir, "--device", "cpu"])


def test_a_batch_with_a_bad_file_writes_the_others_and_exits_1(tmp_path, models_dir, capsys):
    from tests.tiny_models import write_click_wav

    good = [write_click_wav(tmp_path / "in" / f"{name}.wav", duration_s=2.0) for name in ("a", "c")]
    (tmp_path / "in" / "b.wav").write_bytes(b"RIFF" + bytes(64))
    import soundfile as sf

    sf.write(tmp_path / "in" / "short.wav", np.full(200, 0.3, np.float32), 44100)  # 200 samples
    rc = predict(tmp_path, models_dir, str(good[0]), str(tmp_path / "in" / "b.wav"), str(good[1]),
                 str(tmp_path / "in" / "short.wav"))
    err = capsys.readouterr().err
    assert rc == EXIT_SOME_FAILED
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.beats", "a.json",
                                                                    "c.beats", "c.json"]
    assert "Traceback" not in err
    assert "2 of 4 inputs failed" in err
    assert re.search(r"b\.wav: audio undecodable[^\n]*\n", err)
    assert re.search(r"short\.wav: audio too short: 5 ms; beats need at least 1 s\n", err)


def test_same_stem_other_extension_and_m4a_and_folders(tmp_path, models_dir):
    import soundfile as sf

    from tests.audio_files import write_m4a
    from tests.tiny_models import click_track

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "song.wav", click_track(2.0), 44100)
    sf.write(tmp_path / "in" / "song.mp3", click_track(2.0), 44100)
    write_m4a(tmp_path / "in" / "sub" / "song.m4a", click_track(2.0), 44100)
    assert predict(tmp_path, models_dir, str(tmp_path / "in"), "--format", "json") == EXIT_OK
    labels = {p.relative_to(tmp_path / "out").as_posix(): json.loads(p.read_text())
              for p in (tmp_path / "out").rglob("*.json")}
    assert sorted(labels) == ["song.mp3.json", "song.wav.json", "sub/song.json"]
    assert labels["sub/song.json"]["duration"] == pytest.approx(2.0, abs=0.05)


def test_silence_gets_bpm_null_and_a_reason(tmp_path, models_dir):
    import soundfile as sf

    sf.write(tmp_path / "silence.wav", np.zeros(3 * 44100, np.float32), 44100)
    assert predict(tmp_path, models_dir, str(tmp_path / "silence.wav"), "--method", "crnn_grid") == EXIT_OK
    label = json.loads((tmp_path / "out" / "silence.json").read_text())
    assert label["bpm"] is None and "silent" in label["reason"]
    assert (tmp_path / "out" / "silence.beats").read_text() == ""


def test_grid_json_is_rounded(tmp_path, models_dir):
    from tests.tiny_models import write_click_wav

    write_click_wav(tmp_path / "clicks.wav", duration_s=4.0)
    assert predict(tmp_path, models_dir, str(tmp_path / "clicks.wav"), "--method", "crnn_grid",
                   "--min-confidence", "0") == EXIT_OK
    label = json.loads((tmp_path / "out" / "clicks.json").read_text())
    assert label["gridSource"] == "fit_beatgrid"
    assert all(label[key] == round(label[key], 4) for key in ("bpm", "downbeatOffset", "confidence"))


def test_missing_models_are_one_line_and_exit_2(tmp_path, capsys):
    from tests.tiny_models import write_click_wav

    write_click_wav(tmp_path / "clicks.wav", duration_s=2.0)
    (tmp_path / "no-models").mkdir()
    rc = predict(tmp_path, str(tmp_path / "no-models"), str(tmp_path / "clicks.wav"))
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and err.count("\n") == 1
    assert f"{tmp_path / 'no-models' / 'crnn' / 'model.pt'}: model file not found" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ModelFileError):  # --debug: the exception itself, with its traceback
        predict(tmp_path, str(tmp_path / "no-models"), str(tmp_path / "clicks.wav"), "--debug")


def test_an_unknown_model_name_lists_the_shipped_ones(tmp_path, capsys):
    rc = main(["predict", str(tmp_path), "--out", str(tmp_path / "out"), "--models", "no-such-model"])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and "neither a folder nor a shipped model" in err and "shipped:" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a torch without CUDA")
def test_cuda_on_a_cpu_torch_is_a_clear_usage_error(tmp_path, models_dir, capsys):
    from tests.tiny_models import write_click_wav

    write_click_wav(tmp_path / "clicks.wav", duration_s=2.0)
    rc = main(["predict", str(tmp_path / "clicks.wav"), "--out", str(tmp_path / "out"), "--models", models_dir,
               "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and err.count("\n") == 1 and "'cuda' requested but this torch build has no CUDA" in err


def test_adapt_checks_its_inputs_before_reading_any_audio(tmp_path, capsys, monkeypatch):
    import beatgrid.audio

    monkeypatch.setattr(beatgrid.audio, "load_audio", lambda *a, **k: pytest.fail("audio read before the checks"))
    assert main(["adapt", "--audio", str(tmp_path), "--out", str(tmp_path / "out")]) == EXIT_USAGE
    assert "--annotations DIR" in capsys.readouterr().err
    rc = main(["adapt", "--audio", str(tmp_path), "--labels", str(tmp_path), "--out", str(tmp_path / "out"),
               "--init", str(tmp_path / "nowhere")])
    assert rc == EXIT_USAGE and "no crnn/model.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one input form only
        main(["adapt", "--index", "x.csv", "--audio", str(tmp_path), "--out", "o"])
    (tmp_path / "typo.yaml").write_text("adapt:\n  crnn: {epoch: 3}\n")  # a misspelt key is never ignored
    rc = main(["adapt", "--audio", str(tmp_path), "--labels", str(tmp_path), "--out", str(tmp_path / "out"),
               "--config", str(tmp_path / "typo.yaml")])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and f"{tmp_path / 'typo.yaml'}: adapt.crnn.epoch: unknown key (value 3)" in err
    (tmp_path / "range.yaml").write_text("adapt: {replay: 1.5}\n")
    rc = main(["adapt", "--audio", str(tmp_path), "--labels", str(tmp_path), "--out", str(tmp_path / "out"),
               "--config", str(tmp_path / "range.yaml")])
    assert rc == EXIT_USAGE and "adapt.replay = 1.5: must be" in capsys.readouterr().err
    rc = main(["adapt", "--audio", str(tmp_path), "--labels", str(tmp_path), "--out", str(tmp_path / "out"),
               "--group-pattern", "^(song"])
    assert rc == EXIT_USAGE and "--group-pattern: '^(song' is not a regular expression" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_without_models_the_shipped_model_predicts(tmp_path, capsys):
    from beatgrid.pretrained import DEFAULT_NAME, models_dir
    from tests.tiny_models import write_click_wav

    assert (models_dir() / "crnn" / "model.pt").is_file() and models_dir().name == DEFAULT_NAME
    write_click_wav(tmp_path / "clicks.wav", duration_s=8.0)
    rc = main(["predict", str(tmp_path / "clicks.wav"), "--out", str(tmp_path / "out"), "--device", "cpu",
               "--format", "beats,json,rekordbox,jams"])
    assert rc == EXIT_OK, capsys.readouterr().err
    label = json.loads((tmp_path / "out" / "clicks.json").read_text())
    assert label["bpm"] is not None and label["duration"] == pytest.approx(8.0, abs=0.01)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "clicks.beats", "clicks.jams", "clicks.json", "rekordbox.xml"]
