"""Per-shard HDF5 stores of per-track arrays (mels, targets, activations).

Layout of every store (docs/architecture.md, "HDF5 stores")::

    /                       file attrs: the settings that produced the arrays (fps, ...)
    /tracks/<track_id>/     one group per track, optional per-track attrs
    /tracks/<track_id>/<name>   one dataset per array (mel, beat, activations, ...)

Each file has exactly one writer, the job that creates it, and is written under a
temporary name that is renamed into place only when the job succeeded
(:func:`atomic_h5`), so an interrupted job never leaves a file that looks complete.
Readers open files read-only with HDF5 file locking off: a finished store is never
written again, and locking fails on some network file systems. Arrays are written
contiguous (uncompressed), so a range of frames of a track is one contiguous read
(:class:`TrackArray`, training data larger than memory).

:func:`atomic_h5` gives every dataset and the file a ``checksum`` attribute
(:mod:`beatgrid.integrity`), and the stores are byte-identical for identical content
(no timestamps), so Snakemake's checksum comparison sees an unchanged rebuild as
unchanged. A store that cannot be read raises :class:`CorruptFileError` in one line
naming the file and ``beatgrid check --repair``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from beatgrid.integrity import CHECKSUM_ATTR, CorruptFileError, array_checksum, combine_checksums, corrupt_message
from beatgrid.io import atomic_path

__all__ = [
    "TRACKS_GROUP",
    "StoreError",
    "CorruptFileError",
    "atomic_h5",
    "open_store",
    "write_track",
    "write_attrs",
    "read_attrs",
    "read_file_attrs",
    "read_track_array",
    "read_track_attrs",
    "list_track_ids",
    "read_store",
    "read_store_track_attrs",
    "iter_store_tracks",
    "StoreArrays",
    "TrackArray",
    "DROPPED_ATTR",
    "record_dropped",
    "read_dropped",
    "without_dropped",
]

log = logging.getLogger(__name__)

#: Name of the group that holds one subgroup per track.
TRACKS_GROUP = "tracks"
#: File attr listing the tracks a shard job left out (JSON ``{track_id: reason}``).
DROPPED_ATTR = "dropped"


class StoreError(KeyError):
    """A store lacks a track or an array, or two stores disagree; the message names the file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _attr_value(value: Any) -> Any:
    """Attribute values as HDF5 stores them; None becomes the empty string."""
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    return value


def _plain(value: Any) -> Any:
    """HDF5 attribute values back to plain Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_attrs(h5: h5py.File | h5py.Group, attrs: Mapping[str, Any]) -> None:
    """Set attributes (str, numbers, bools, small arrays) on a file or group."""
    for key, value in attrs.items():
        h5.attrs[key] = _attr_value(value)


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, attrs: Mapping[str, Any] | None = None) -> Iterator[h5py.File]:
    """Open a new store for writing; it appears at ``path`` only if the block succeeds.

    Writes a temporary file beside ``path`` (:func:`beatgrid.io.atomic_path`), creates the
    ``/tracks`` group (so a shard without tracks is still a valid store) and sets the
    file ``attrs``; on success writes the checksums, closes it and renames it onto
    ``path``; on any exception removes it and re-raises.
    """
    with atomic_path(path) as tmp_path:
        h5 = h5py.File(tmp_path, "w", locking=False)
        try:
            h5.require_group(TRACKS_GROUP)
            if attrs:
                write_attrs(h5, attrs)
            yield h5
            _write_checksums(h5)
        except BaseException:
            with contextlib.suppress(Exception):
                h5.close()
            raise
        h5.close()


def _write_checksums(h5: h5py.File) -> None:
    """Set the checksum attribute of every dataset and, over all of them, of the file."""
    found: dict[str, str] = {}

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            found[name] = array_checksum(node[()])
            node.attrs[CHECKSUM_ATTR] = found[name]

    h5.visititems(visit)
    h5.attrs[CHECKSUM_ATTR] = combine_checksums(found.items())


def open_store(path: str | os.PathLike) -> h5py.File:
    """Open a finished store read-only (file locking off). Raises FileNotFoundError
    naming the file when it is missing, :class:`CorruptFileError` (an OSError) when
    it is not a readable HDF5 file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"HDF5 store {path} does not exist")
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise CorruptFileError(corrupt_message(path, f"not a readable HDF5 store ({exc})")) from None


def _read(path: str | os.PathLike, dataset: h5py.Dataset) -> np.ndarray:
    """A dataset's array; a read failure (damaged file) is a one-line CorruptFileError."""
    try:
        return dataset[()]
    except (OSError, RuntimeError) as exc:
        raise CorruptFileError(corrupt_message(path, f"cannot read {dataset.name} ({exc})")) from None


def _check_track_id(track_id: str) -> None:
    if not isinstance(track_id, str) or not track_id or "/" in track_id or track_id in {".", ".."}:
        raise ValueError(f"track_id must be a non-empty string without '/', got {track_id!r}")


def write_track(
    h5: h5py.File,
    track_id: str,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
    compression: str | None = None,
) -> None:
    """Write ``arrays`` as ``/tracks/<track_id>/<name>`` (dtypes kept) with optional
    per-track ``attrs``. ``compression`` is an h5py filter (``"lzf"``, ``"gzip"``) or None.

    Raises:
        ValueError: the track is already in the store, or ``track_id`` contains '/'.
    """
    _check_track_id(track_id)
    tracks = h5.require_group(TRACKS_GROUP)
    if track_id in tracks:
        raise ValueError(f"{h5.filename}: track {track_id!r} is already in the store")
    group = tracks.create_group(track_id)
    for name, array in arrays.items():
        array = np.asarray(array)
        chunked = compression is not None and array.size > 0
        group.create_dataset(name, data=array, compression=compression if chunked else None,
                             track_times=False)  # no timestamps: same content, same bytes
    if attrs:
        write_attrs(group, attrs)


def _track_group(h5: h5py.File, track_id: str, path: str | os.PathLike) -> h5py.Group:
    tracks = h5.get(TRACKS_GROUP)
    if tracks is None:
        raise StoreError(f"{path}: no '/{TRACKS_GROUP}' group; not a beatgrid store")
    group = tracks.get(track_id)
    if group is None:
        raise StoreError(f"{path}: track {track_id!r} is not in the store")
    return group


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """The file attributes of a store as plain Python values."""
    with open_store(path) as h5:
        return {key: _plain(value) for key, value in h5.attrs.items() if key != CHECKSUM_ATTR}


#: Alias of :func:`read_attrs` (the file-level attributes).
read_file_attrs = read_attrs


def read_track_attrs(path: str | os.PathLike, track_id: str) -> dict[str, Any]:
    """The attributes of one track's group."""
    with open_store(path) as h5:
        return {key: _plain(v) for key, v in _track_group(h5, track_id, path).attrs.items()}


def read_track_array(path: str | os.PathLike, track_id: str, name: str) -> np.ndarray:
    """One array of one track, as stored.

    Raises:
        StoreError: the track or the array is not in the store (naming the file).
    """
    with open_store(path) as h5:
        group = _track_group(h5, track_id, path)
        if name not in group:
            raise StoreError(f"{path}: track {track_id!r} has no array {name!r} (has {sorted(group)})")
        return _read(path, group[name])


def list_track_ids(path: str | os.PathLike) -> list[str]:
    """Sorted ids of the tracks in a store (empty for an empty shard)."""
    with open_store(path) as h5:
        tracks = h5.get(TRACKS_GROUP)
        return sorted(tracks) if tracks is not None else []


def iter_store_tracks(paths: str | os.PathLike | Iterable[str | os.PathLike], wanted: set[str] | None
                  ) -> Iterator[tuple[str | os.PathLike, str, h5py.Group]]:
    """``(path, track_id, group)`` for every track (in ``wanted``, when given) of the stores
    ``paths``, in path order and sorted track order; each store is open while its groups
    are yielded."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for path in paths:
        with open_store(path) as h5:
            tracks = h5.get(TRACKS_GROUP)
            if tracks is None:
                raise StoreError(f"{path}: no '/{TRACKS_GROUP}' group; not a beatgrid store")
            for track_id in sorted(tracks):
                if wanted is None or track_id in wanted:
                    yield path, track_id, tracks[track_id]


def read_store(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    name: str,
    track_ids: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """Read array ``name`` of every track (or of ``track_ids``) across the stores ``paths``.

    Returns ``{track_id: array}`` in store order (or in the order of ``track_ids``).

    Raises:
        StoreError: a track appears in two stores, a requested track is in none, or a
            track lacks the array.
    """
    wanted = None if track_ids is None else list(dict.fromkeys(track_ids))
    found: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    for path, track_id, group in iter_store_tracks(paths, None if wanted is None else set(wanted)):
        if track_id in found:
            raise StoreError(f"track {track_id!r} is in two stores: {source[track_id]} and {path}")
        if name not in group:
            raise StoreError(f"{path}: track {track_id!r} has no array {name!r} (has {sorted(group)})")
        found[track_id] = _read(path, group[name])
        source[track_id] = str(path)
    if wanted is None:
        return found
    missing = [t for t in wanted if t not in found]
    if missing:
        raise StoreError(f"{len(missing)} track(s) are in none of the stores, e.g. {missing[:5]}")
    return {t: found[t] for t in wanted}


def read_store_track_attrs(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    track_ids: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-track attributes ``{track_id: {key: value}}`` across the stores ``paths``
    (only ``track_ids`` when given; tracks not found are left out)."""
    wanted = None if track_ids is None else set(track_ids)
    return {track_id: {k: _plain(v) for k, v in group.attrs.items()}
            for _, track_id, group in iter_store_tracks(paths, wanted)}


class TrackArray:
    """One track's array in an HDF5 store, read on demand: ``shape``, ``ndim``, ``dtype``
    and ``len`` from the file's metadata; ``array[start:stop]`` reads only those frames;
    ``np.asarray(array)`` reads it whole.

    The stores write arrays contiguous and uncompressed, so a range of frames is one
    ``pread`` at a byte offset recorded from the metadata: no HDF5 object is opened per
    read, and nothing is cached per track. (An array written chunked or compressed is
    read through h5py instead.) Each process, each DataLoader worker included, opens its
    own read-only file descriptor on first use (:func:`_read_rows`).

    With several ``names`` (``beat``, ``downbeat``) the 1-D arrays are stacked to
    ``[T, len(names)]`` float32, as :func:`beatgrid.data.dataset.load_frame_dataset` stacks
    targets in memory.
    """

    __slots__ = ("path", "track_id", "names", "shape", "dtype", "_parts")

    def __init__(self, path: str, track_id: str, names: Sequence[str], parts: Sequence[tuple[int | None, tuple[int, ...], np.dtype]]):
        """``parts``: per name, the byte offset in the file (None: read through h5py), shape and dtype."""
        self.path, self.track_id, self.names = path, track_id, tuple(names)
        self._parts = [(offset, tuple(shape), np.dtype(dtype)) for offset, shape, dtype in parts]
        _, first_shape, first_dtype = self._parts[0]
        self.shape = (first_shape[0], len(self.names)) if len(self.names) > 1 else first_shape
        self.dtype = np.dtype(np.float32) if len(self.names) > 1 else first_dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError(f"TrackArray reads frame ranges [start:stop], got {index!r}")
        start, stop, _ = index.indices(self.shape[0])
        stop = max(start, stop)
        arrays = [
            _read_rows(self.path, offset, shape, dtype, start, stop)
            if offset is not None
            else _open_h5(self.path)[TRACKS_GROUP][self.track_id][name][start:stop]
            for name, (offset, shape, dtype) in zip(self.names, self._parts)
        ]
        return arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=1).astype(np.float32)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self[:]
        return array if dtype is None else array.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"TrackArray({self.path!r}, {self.track_id!r}, {self.names}, shape={self.shape})"


#: This process's open files: ``(pid, {("fd" | "h5", path): handle})``. A forked
#: DataLoader worker sees another pid and opens its own (handles must not cross a fork).
_OPEN: tuple[int, dict[tuple[str, str], Any]] = (-1, {})


def _handle(kind: str, path: str) -> Any:
    global _OPEN
    pid, handles = _OPEN
    if pid != os.getpid():
        _OPEN = pid, handles = os.getpid(), {}  # the parent's handles are left to the parent
    key = (kind, path)
    if key not in handles:
        handles[key] = os.open(path, os.O_RDONLY) if kind == "fd" else open_store(path)
    return handles[key]


def _open_h5(path: str) -> h5py.File:
    return _handle("h5", path)


def _read_rows(path: str, offset: int, shape: tuple[int, ...], dtype: np.dtype, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a contiguous C-order array stored at byte ``offset`` of ``path``."""
    rows = np.empty((stop - start, *shape[1:]), dtype)
    row_bytes = rows.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    if rows.nbytes:
        read = os.preadv(_handle("fd", path), [memoryview(rows).cast("B")], offset + start * row_bytes)
        if read != rows.nbytes:
            raise StoreError(f"{path}: short read ({read} of {rows.nbytes} bytes at {offset + start * row_bytes}); the file is truncated")
    return rows


def _contiguous_offset(dataset: h5py.Dataset) -> int | None:
    """Byte offset of a contiguous dataset's data in its file; None when it is chunked
    (so also when filtered or compressed) or has no storage allocated (empty)."""
    return dataset.id.get_offset()


class StoreArrays(Mapping[str, TrackArray]):
    """``{track_id: TrackArray}`` of one array (or stacked arrays) across stores, from
    their metadata only; nothing is read until an item is sliced."""

    def __init__(self, paths: Sequence[str], names: Sequence[str], track_ids: Iterable[str] | None = None):
        wanted = None if track_ids is None else list(dict.fromkeys(track_ids))
        self._arrays: dict[str, TrackArray] = {}
        source: dict[str, str] = {}
        for path, track_id, group in iter_store_tracks(list(paths), None if wanted is None else set(wanted)):
            if track_id in self._arrays:
                raise StoreError(f"track {track_id!r} is in two stores: {source[track_id]} and {path}")
            missing = [name for name in names if name not in group]
            if missing:
                raise StoreError(f"{path}: track {track_id!r} has no array {missing[0]!r} (has {sorted(group)})")
            datasets = [group[name] for name in names]
            parts = [(_contiguous_offset(dataset), dataset.shape, dataset.dtype) for dataset in datasets]
            lengths = {shape[0] for _, shape, _ in parts}
            if len(lengths) > 1:
                raise ValueError(f"{path}: track {track_id!r}: arrays {list(names)} differ in length {sorted(lengths)}")
            self._arrays[track_id] = TrackArray(str(path), track_id, names, parts)
            source[track_id] = str(path)
        if wanted is not None:
            missing_ids = [t for t in wanted if t not in self._arrays]
            if missing_ids:
                raise StoreError(f"{len(missing_ids)} track(s) are in none of the stores, e.g. {missing_ids[:5]}")
            self._arrays = {t: self._arrays[t] for t in wanted}

    def __getitem__(self, track_id: str) -> TrackArray:
        return self._arrays[track_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def nbytes(self) -> int:
        """Bytes the arrays would take in memory."""
        return sum(array.nbytes for array in self._arrays.values())


# ----------------------------------------------------------------------------- dropped tracks
def record_dropped(h5: h5py.File, dropped: Mapping[str, str]) -> None:
    """Record in a store being written the tracks its job left out, ``{track_id: reason}``
    (set only when some were: a store without drops keeps its bytes)."""
    if dropped:
        h5.attrs[DROPPED_ATTR] = json.dumps(dict(sorted(dropped.items())))


def read_dropped(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> dict[str, str]:
    """``{track_id: "<store>: <reason>"}`` of the tracks the stores ``paths`` left out."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    dropped: dict[str, str] = {}
    for path in paths:
        with open_store(path) as h5:
            for track_id, reason in json.loads(_plain(h5.attrs.get(DROPPED_ATTR, "{}")) or "{}").items():
                dropped.setdefault(track_id, f"{path}: {reason}")
    return dropped


def without_dropped(track_ids: Iterable[str], paths: str | os.PathLike | Iterable[str | os.PathLike]
                    ) -> list[str]:
    """``track_ids`` less those a shard job of ``paths`` dropped (each logged as a warning)."""
    dropped = read_dropped(paths)
    kept = []
    for track_id in track_ids:
        if track_id in dropped:
            log.warning("track %s left out: its shard job dropped it (%s)", track_id, dropped[track_id])
        else:
            kept.append(track_id)
    return kept
