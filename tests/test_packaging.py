"""A non-editable `pip install .` gives a working `beatgrid`: default config and shipped model
inside the package, prediction of a folder of mixed files from another working directory.

Builds a fresh virtualenv that reuses the installed dependencies (--system-site-packages)
and installs a copy of the tree without them (--no-deps --no-build-isolation); about half a
minute, so it runs in CI with the other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.audio_files import write_m4a
from tests.tiny_models import click_track

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[1]
#: Files of the tree that the package build reads.
BUILD_INPUTS = ("pyproject.toml", "README.md", "config.yaml", "config.schema.yaml", "beatgrid")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtualenv with beatgrid pip-installed (not editable) from a copy of the tree; its bin/."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, source / name)
    venv.create(root / "venv", system_site_packages=True, with_pip=False)
    bin_dir = root / "venv" / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q",
                    "--no-deps", "--no-build-isolation", str(source)],
                   check=True, cwd=root, env=_clean_env(), capture_output=True, timeout=600)
    shutil.rmtree(source)  # nothing may come from the tree any more
    return bin_dir


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "beatgrid"), *args], cwd=cwd, env=_clean_env(),
                          capture_output=True, text=True, timeout=600)


def test_the_wheel_holds_the_package_data(installed, tmp_path):
    code = ("import beatgrid, beatgrid.workflow as w, beatgrid.pretrained as p, beatgrid.report.html as h; "
            "print(beatgrid.__file__); print(w.default_config_path()); print(w.load_config()['crnn']['epochs']); "
            "w.validate_config(w.load_config(), 'config.yaml'); "
            "print(p.available()); print(len(h.render('page.html.j2', title='t', sections=[])))")
    out = subprocess.run([str(installed / "python"), "-c", code], cwd=tmp_path, env=_clean_env(),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    venv_root = installed.parent
    assert Path(out[0]).is_relative_to(venv_root), "beatgrid was imported from outside the virtualenv"
    config = Path(out[1])
    assert config.is_relative_to(venv_root) and config.is_file() and not config.is_symlink()
    assert int(out[2]) > 0
    assert "synth-v2" in out[3]  # the shipped model travels in the wheel
    assert int(out[4]) > 0  # ... and the report's templates (an installed `beatgrid adapt` writes a report)
    version = run(installed, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("beatgrid ")


def test_installed_command_predicts_a_folder_of_mixed_files(installed, tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "clicks.wav", click_track(4.0), 44100)
    sf.write(music / "clicks.mp3", click_track(4.0), 44100)
    write_m4a(music / "clicks.m4a", click_track(4.0), 44100)
    (music / "corrupt.wav").write_bytes(b"RIFF" + os.urandom(300))
    sf.write(music / "silent.flac", np.zeros(3 * 44100, np.float32), 44100)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    done = run(installed, "predict", str(music), "--out", "out", cwd=elsewhere)  # the shipped model
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "corrupt.wav" in line]
    assert errors and all("corrupt.wav: audio undecodable: " in line for line in errors)
    assert "1 of 5 inputs failed" in done.stderr
    out = elsewhere / "out"
    assert sorted(p.name for p in out.glob("*.json")) == ["clicks.m4a.json", "clicks.mp3.json",
                                                          "clicks.wav.json", "silent.json"]
    assert json.loads((out / "silent.json").read_text())["bpm"] is None
    clicks = json.loads((out / "clicks.wav.json").read_text())
    assert clicks["bpm"] is not None and 0 < clicks["confidence"] <= 1
