"""Writing files safely: a file appears whole or not at all (``atomic_path``, ``atomic_write``,
``atomic_write_text``), the one way every module of beatgrid writes an output.

What the files hold has its own home: the ``.beats`` text and the label JSON in
:mod:`beatgrid.annotations`, a method's per-track prediction files in
:mod:`beatgrid.predictions` (the label itself: :func:`beatgrid.inference.beats_label`), and
the exports for other software (Rekordbox XML, JAMS) in :mod:`beatgrid.export`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file name beside ``path`` for the block to write; when the block
    succeeds the file is fsynced and renamed onto ``path``, when it raises it is removed.

    An interrupted or failing write leaves ``path`` as it was (absent or the old file),
    never half written. The name is ``.<name>.<pid>.<random>.tmp`` (what ``beatgrid check
    --repair`` removes after a killed job): it ends in ``.tmp`` for writers that pick the
    format from the suffix. The file gets the usual permissions (umask), unlike a
    ``tempfile.mkstemp`` file (0600). Creates the parent folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name rather than mkstemp, whose 0600 mode would stick to the output
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``
    (:func:`atomic_path`). Returns ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
