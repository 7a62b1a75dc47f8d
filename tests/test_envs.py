"""envs/*.yaml (for --software-deployment-method conda) agree with pyproject.toml, and every rule names one."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

#: conda-forge names of PyPI packages whose names differ.
CONDA_NAMES = {"torch": "pytorch", "soundfile": "pysoundfile", "soxr": "soxr-python", "matplotlib": "matplotlib-base"}
#: Runtime packages the workflow's jobs do not import (Snakemake itself, schema checks, report styling).
NOT_IN_JOB_ENVS = {"snakemake", "jsonschema", "pygments"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]} - NOT_IN_JOB_ENVS
    return {CONDA_NAMES.get(n, n).replace("_", "-") for n in names}


def env_packages(path: Path) -> set[str]:
    env = yaml.safe_load(path.read_text())
    return {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python"}


def test_envs_use_only_packages_of_pyproject_and_together_cover_it():
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert {p.stem for p in envs} >= {"features", "training", "evaluation"}
    wanted = pyproject_packages()
    union = set()
    for path in envs:
        packages = env_packages(path)
        assert packages <= wanted, f"{path.name} names packages pyproject.toml lacks: {packages - wanted}"
        union |= packages
    assert union == wanted, f"pyproject.toml packages in no conda env: {wanted - union}"


def test_every_rule_has_a_conda_env_and_a_log():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.split(r"^(?:rule|checkpoint) ", text, flags=re.M)[1:]
        for body in rules:
            name = body.split(":", 1)[0]
            assert "conda:" in body, f"{smk.name}: rule {name} has no conda env"
            assert "log:" in body, f"{smk.name}: rule {name} has no log"
            env = re.search(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', body)
            assert env and (REPO / env.group(1)).is_file(), f"{smk.name}: rule {name}: env file missing"
