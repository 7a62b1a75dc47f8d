"""beatgrid.provenance: the record every run leaves in results/provenance.yaml."""

import subprocess

import yaml

from beatgrid.provenance import git_revision, package_versions, write_provenance


def test_package_versions_name_the_result_producing_packages():
    versions = package_versions()
    assert versions["numpy"] not in ("", "not installed")
    assert {"python", "torch", "librosa", "mir_eval", "snakemake"} <= set(versions)


def test_git_revision_of_a_repo_and_of_a_plain_folder(tmp_path):
    assert git_revision(tmp_path) == "unknown"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m"], check=True)
    clean = git_revision(tmp_path)
    assert len(clean) == 12 and not clean.endswith("-dirty")
    (tmp_path / "f").write_text("y")
    assert git_revision(tmp_path) == clean + "-dirty"


def test_write_provenance_records_config_and_versions(tmp_path):
    path = write_provenance(tmp_path / "results" / "provenance.yaml", {"crnn": {"epochs": 3, "conv_channels": (8, 16)}}, tmp_path)
    record = yaml.safe_load(path.read_text())
    assert record["config"]["crnn"] == {"epochs": 3, "conv_channels": [8, 16]}
    assert record["git_revision"] == "unknown"
    assert "torch" in record["packages"]


def test_plain_turns_numpy_and_containers_into_python():
    import numpy as np

    from beatgrid.provenance import plain

    value = plain({1: (np.float64(0.5), np.arange(3)), "p": __import__("pathlib").Path("/x"), "n": None})
    assert value == {"1": [0.5, [0, 1, 2]], "p": "/x", "n": None}
    assert type(value["1"][0]) is float and type(value["1"][1][0]) is int
