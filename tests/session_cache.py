"""Expensive test inputs built once per pytest session, shared by its xdist workers.

`pytest -n 2` runs two worker processes, each with its own session-scoped fixtures: a
fixture that builds a workflow run would build it once per worker. `build_once` builds it
in a folder every worker of the session sees (the parent of the workers' ``popen-gwN``
base temp folders), under a file lock: the first worker builds, the others wait and
reuse it. A failed build is recorded, so the others fail at once with the same message
instead of building again.

The folder is read-only by convention once built: a test that runs Snakemake on it (even
a dry run, which writes a log there) works on a copy.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base temp folder that every xdist worker of this session shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``<session root>/<name>``, filled by ``build(folder)`` in one worker only."""
    root = session_root(tmp_path_factory)
    folder, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if failed.is_file():
            raise RuntimeError(f"{name} failed to build in another worker of this session:\n{failed.read_text()}")
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                build(folder)
            except BaseException as error:
                failed.write_text(f"{type(error).__name__}: {error}")
                raise
            done.touch()
    return folder
