"""What produced a result: package versions, the git revision, the config.

Cheap to import (no numpy/torch), so the Snakefile can record provenance at the end
of every successful run.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

REPORTED_PACKAGES = (
    "beatgrid", "numpy", "scipy", "torch", "librosa", "mir_eval", "h5py", "pandas", "soundfile", "soxr",
    "numba", "matplotlib", "snakemake",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that produce results (``"not installed"`` if absent)."""
    versions = {"python": platform.python_version()}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_revision(repo_dir: str | Path = ".") -> str:
    """``git describe``-style revision of ``repo_dir`` (commit hash, ``-dirty`` with local edits), or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """CPU, logical cores and Python: the line benchmarks print with their figures."""
    import os

    return f"{cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}, {platform.system()}"


def provenance(config: Mapping[str, Any], repo_dir: str | Path) -> dict[str, Any]:
    """The record of a run: time, command line, git revision, package versions and config."""
    return {
        "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "git_revision": git_revision(repo_dir),
        "machine": machine_description(),
        "packages": package_versions(),
        "config": plain(config),
    }


def write_provenance(path: str | Path, config: Mapping[str, Any], repo_dir: str | Path) -> Path:
    """Write :func:`provenance` as YAML to ``path`` (e.g. ``results/provenance.yaml``)."""
    import yaml

    from .io import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(provenance(config, repo_dir), sort_keys=False))


def plain(value: Any) -> Any:
    """Config or metadata -> plain Python for YAML, JSON and ``torch.load(weights_only=True)``.

    Mappings (Snakemake's Config too) become dicts with string keys, tuples lists, numpy
    scalars and arrays (anything with ``tolist``) Python numbers and lists, paths strings.
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars (np.float64 is a float) and arrays, without importing numpy
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value
