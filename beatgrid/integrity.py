"""Integrity of finished results: checksums written at creation, verified by `beatgrid check`.

Every HDF5 store written by :func:`beatgrid.data.store.atomic_h5` carries a checksum
attribute (:data:`CHECKSUM_ATTR`) on each dataset (of its dtype, shape and bytes) and
one on the file over every dataset's name and checksum; every ``model.pt`` written by
:func:`beatgrid.models.save_model` carries one over its weights. A file cut short by a
full disk or a copy, or with flipped bits, then fails :func:`check_file`.

:func:`check_results` walks a results folder; with ``repair=True`` it removes the
corrupt files and the temporary files of killed jobs. Snakemake then finds those
outputs missing and rebuilds exactly them and what depends on them (a CRNN resumes
from its ``checkpoint.pt``); every other finished file is kept.

This module is cheap to import (hashlib, numpy); torch and h5py are imported when a
file is checked.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "CHECKSUM_ATTR",
    "CorruptFileError",
    "FileCheck",
    "array_checksum",
    "combine_checksums",
    "repair_hint",
    "corrupt_message",
    "model_checksum",
    "check_store",
    "check_model",
    "check_file",
    "check_results",
]

#: Name of the checksum attribute (HDF5 datasets and files) and key (model.pt).
CHECKSUM_ATTR = "checksum"
_ALGORITHM = "blake2b"
#: Temporary files of writers that did not finish (atomic_h5, atomic_torch_save, CSV writers).
_LEFTOVER = re.compile(r"(\.tmp-\d+$)|(^\..+\.tmp$)")


class CorruptFileError(OSError):
    """A finished result that cannot be read back or fails its checksum; the message
    names the file and the command that repairs it."""


def array_checksum(array: Any) -> str:
    """``"blake2b:<hex>"`` of an array's dtype, shape and bytes (numpy arrays, torch tensors)."""
    if hasattr(array, "detach"):  # a torch tensor: its bytes whatever the dtype (bfloat16 too)
        tensor = array.detach().cpu().contiguous()
        header = f"{tensor.dtype}{tuple(tensor.shape)}"
        data = tensor.reshape(-1).view(_torch_uint8()).numpy()
    else:
        data = np.ascontiguousarray(np.asarray(array))
        header = f"{data.dtype.str}{data.shape}"
        data = data.reshape(-1).view(np.uint8)
    digest = hashlib.blake2b(header.encode(), digest_size=16)
    digest.update(data)
    return f"{_ALGORITHM}:{digest.hexdigest()}"


def _torch_uint8() -> Any:
    import torch

    return torch.uint8


def combine_checksums(items: Iterable[tuple[str, str]]) -> str:
    """One checksum over ``(name, checksum)`` pairs, in sorted name order."""
    digest = hashlib.blake2b(digest_size=16)
    for name, checksum in sorted(items):
        digest.update(f"{name}\0{checksum}\n".encode())
    return f"{_ALGORITHM}:{digest.hexdigest()}"


def repair_hint(path: str | os.PathLike) -> str:
    """What to run about a corrupt ``path``: ``beatgrid check --repair`` on its results folder."""
    path = Path(path)
    parents = [p for p in path.parents if p.name == "results"]
    root = parents[0] if parents else path.parent
    return f"run `beatgrid check --repair {root}` to remove it, then snakemake rebuilds it"


def corrupt_message(path: str | os.PathLike, problem: str) -> str:
    """``"<path>: <problem>; run `beatgrid check --repair ...`"`` on one line."""
    first_line = " ".join(str(problem).split())
    return f"{path}: {first_line}; {repair_hint(path)}"


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one file. ``status``: ``ok``; ``unverified`` (readable, written
    before checksums existed); ``corrupt``; ``leftover`` (temporary file of a killed
    job); ``removed`` (corrupt or leftover, deleted by ``repair``)."""

    path: Path
    status: Literal["ok", "unverified", "corrupt", "leftover", "removed"]
    problem: str = ""

    def __str__(self) -> str:
        return f"{self.status:<10} {self.path}" + (f": {self.problem}" if self.problem else "")


def check_store(path: str | os.PathLike) -> FileCheck:
    """Open an HDF5 store, read every dataset and compare its checksums."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r", locking=False) as h5:
            found: dict[str, str] = {}
            problems: list[str] = []

            def visit(name: str, node: Any) -> None:
                if not isinstance(node, h5py.Dataset):
                    return
                checksum = array_checksum(node[()])
                found[name] = checksum
                stored = node.attrs.get(CHECKSUM_ATTR)
                if stored is not None and _text(stored) != checksum:
                    problems.append(f"dataset /{name} does not match its checksum")

            h5.visititems(visit)
            stored = h5.attrs.get(CHECKSUM_ATTR)
            if problems:
                return FileCheck(path, "corrupt", f"{problems[0]} ({len(problems)} dataset(s) differ)")
            if stored is None:
                return FileCheck(path, "unverified", "no checksum (written before checksums); readable")
            if _text(stored) != combine_checksums(found.items()):
                return FileCheck(path, "corrupt", "its datasets do not match the file's checksum")
    except Exception as exc:  # truncated, unreadable metadata, failed decompression, ...
        return FileCheck(path, "corrupt", f"unreadable HDF5 ({' '.join(str(exc).split())})")
    return FileCheck(path, "ok")


def model_checksum(state_dict: Any) -> str:
    """The checksum of a model's weights: every tensor's name, dtype, shape and bytes."""
    return combine_checksums((name, array_checksum(tensor)) for name, tensor in state_dict.items())


def check_model(path: str | os.PathLike) -> FileCheck:
    """Load a ``model.pt`` (weights only) and compare the checksum of its weights."""
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        return FileCheck(path, "corrupt", f"unreadable model file ({' '.join(str(exc).split())})")
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        return FileCheck(path, "corrupt", "not a beatgrid model file (no state_dict)")
    stored = payload.get(CHECKSUM_ATTR)
    if stored is None:
        return FileCheck(path, "unverified", "no checksum (written before checksums); readable")
    if stored != model_checksum(payload["state_dict"]):
        return FileCheck(path, "corrupt", "weights do not match their checksum")
    return FileCheck(path, "ok")


def check_file(path: str | os.PathLike) -> FileCheck:
    """:func:`check_store` for ``*.h5``, :func:`check_model` for ``*.pt``."""
    path = Path(path)
    if path.suffix == ".h5":
        return check_store(path)
    if path.suffix == ".pt":
        return check_model(path)
    raise ValueError(f"{path}: not an HDF5 store (.h5) or a model file (.pt)")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_results(root: str | os.PathLike, repair: bool = False) -> list[FileCheck]:
    """Check every HDF5 store and ``model.pt`` below ``root`` (sorted by path), and list
    the temporary files killed jobs left. ``repair``: delete the corrupt and leftover
    files (their verdict becomes ``removed``) so that the next snakemake run rebuilds them.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        BlockingIOError: ``repair`` while Snakemake's lock in ``root/../.snakemake`` is held.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results folder")
    locks = root.resolve().parent / ".snakemake" / "locks"
    if repair and locks.is_dir() and any(locks.iterdir()):
        raise BlockingIOError(f"{locks.parent.parent}: a snakemake run holds the lock (or was killed: then run "
                           "`snakemake --unlock` first); not repairing files a running job may be writing")
    checks: list[FileCheck] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".snakemake")
        for name in sorted(filenames):
            path = Path(folder) / name
            if _LEFTOVER.search(name):
                checks.append(FileCheck(path, "leftover", "temporary file of a job that did not finish"))
            elif name.endswith(".h5") or name == "model.pt":
                checks.append(check_file(path))
    if repair:
        for i, check in enumerate(checks):
            if check.status in ("corrupt", "leftover"):
                check.path.unlink(missing_ok=True)
                checks[i] = FileCheck(check.path, "removed", check.problem)
    return checks
