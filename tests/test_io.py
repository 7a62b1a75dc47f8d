"""beatgrid.io: atomic writes keep the old file on failure and give normal permissions."""

from __future__ import annotations

import os

import pytest

from beatgrid.io import atomic_write, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "a.json", "old\n")
    assert path.read_text() == "old\n"

    def half_then_fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_written_files_follow_the_umask_not_0600(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_path_renames_on_success_and_removes_on_failure(tmp_path):
    from beatgrid.integrity import _LEFTOVER
    from beatgrid.io import atomic_path

    target = tmp_path / "store.h5"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and _LEFTOVER.search(tmp.name)  # what check --repair removes
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["store.h5"]
