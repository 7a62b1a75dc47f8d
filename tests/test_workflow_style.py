"""The workflow files pass `snakefmt --check` (configured in pyproject.toml) and `snakemake --lint`.

A failing test prints the tool's own output: the diff snakefmt would apply (run
`snakefmt .` in the repository to apply it) or the lints with the rule and line they name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "default": None,  # config.yaml, read by the Snakefile itself
    "tiny": REPO / "tests" / "configs" / "tiny.yaml",
    "pretrain": REPO / "configs" / "pretrain.yaml",
}


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_workflow_files_are_formatted_as_snakefmt_writes_them():
    pytest.importorskip("snakefmt", reason="snakefmt is a test extra (Python >= 3.11): pip install -e '.[test]'")
    # The repository root: snakefmt finds every Snakefile and *.smk below it and reads
    # [tool.snakefmt] from pyproject.toml.
    result = _run([sys.executable, "-m", "snakefmt", "--check", "--diff", "."], cwd=REPO)
    assert result.returncode == 0, (
        f"snakefmt would reformat the workflow (apply with `snakefmt .`):\n{result.stdout}\n{result.stderr}"
    )


@pytest.mark.parametrize("config", CONFIGS)
def test_snakemake_lint_finds_nothing(config, tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    if CONFIGS[config] is not None:
        cmd += ["--configfile", str(CONFIGS[config])]
    result = _run(cmd, cwd=tmp_path)
    assert result.returncode == 0, f"snakemake --lint ({config} config):\n{result.stdout}\n{result.stderr}"
