"""The `beatgrid` command line: arguments, help, exit codes and error reporting."""

from __future__ import annotations

import pytest

from beatgrid import __version__
from beatgrid.cli import EXIT_USAGE, build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"beatgrid {__version__}"


def test_predict_help_shows_defaults_and_every_method(capsys):
    from beatgrid.inference import METHOD_HELP

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    assert "(default: 60.0)" in text
    for method, meaning in METHOD_HELP.items():
        assert method in text and meaning.split()[0] in text


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
