"""The dataset index: which tracks exist, their split and their shard.

:func:`build_index` reads every dataset of the config, pairs audio with its
annotation, checks both, and returns two tables:

``tracks`` (``results/index/tracks.csv``, written and read by :mod:`beatgrid.data.tracks`)
    one row per usable track, columns :data:`~beatgrid.data.tracks.TRACK_COLUMNS` then
    :data:`~beatgrid.data.tracks.EXTRA_COLUMNS` (``n_beats``, ``bpm`` = median tempo of the
    annotation, ``beats_per_bar``, ``source`` = the config dataset the row came from,
    ``group`` = an index CSV's ``group``, empty elsewhere).
``rejected`` (``results/index/rejected.csv``)
    every input that was not indexed, columns :data:`~beatgrid.data.tracks.REJECTED_COLUMNS`, with a
    human-readable ``reason``. A bad file never stops the others.

Dataset formats (``datasets.<name>.format`` in config.yaml):

``synth``
    the demo rendered by the workflow into batch folders (``synth_dirs[name]``), each
    holding ``<stem>.wav`` + ``<stem>.beats`` (+ ``<stem>.labels.json``, not read here).
``beats_dir`` (``audio_dir``, ``annotations_dir``)
    audio paired with ``.beats`` or JAMS (``.jams``) files, both searched recursively;
    audio that neither claims pairs with a ``.txt`` beat file (Harmonix, SMC, Hainsworth),
    and a ``.txt`` that pairs with no audio is ignored (notes, licences). A file pairs with
    the annotation of the same relative path, else the same stem, else the same
    normalised stem (lower case, runs of non-alphanumerics -> ``_``), else the same
    normalised stem after dropping one leading ``<dataset>_`` token on either side, so
    Ballroom (``Media-105901.wav`` / ``Media-105901.beats``) and GTZAN with the Beat
    This! annotations (``blues.00001.wav`` / ``gtzan_blues_00001.beats``) both pair.
``label_json`` (``audio_dir``, ``labels_dir``)
    ``*.labels.json`` paired with audio as seed 001 does: the label's ``fileName``,
    else its base name with the common audio extensions (also searched recursively).
``index_csv`` (``path``)
    a seed-000 ``dataset_index.csv`` (``dataset,audio_path,beats_path[,has_downbeats][,group]``,
    paths relative to the CSV's folder; ``beats_path`` a ``.beats``, ``.jams`` or label
    ``.json`` file); each row's ``dataset`` is the track's dataset; rows
    of one ``group`` (mixes or edits of one piece) share a split and a fold.

Any format takes ``group_pattern``: a regular expression searched in each audio file's
stem whose first capture group names the track's group (tracks of one group, such as a
piece's mixes or edits, share a split and a cross-validation fold; an index CSV's own
``group`` column wins).

Paths: relative paths in the config are relative to the current working directory
(the workflow's working directory). Stored paths are the config's path joined with
the file's path below it, neither resolved nor made absolute, so an index stays valid
when the project folder moves; every later job runs in the same working directory.

Audio durations come from the file header (soundfile); every file is also decoded
once to reject audio that would fail later, in a feature job (non-finite samples,
silence only, shorter than one frame). Annotations are checked against the audio's
duration (see :func:`beatgrid.annotations.validate_annotation`).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from beatgrid.annotations import (
    ANNOTATION_SUFFIXES,
    LABEL_JSON_FORMAT,
    TEXT_SUFFIX,
    AnnotationError,
    annotation_format_of,
    label_grid_to_annotation,
    read_annotation,
    read_label_json,
    validate_annotation,
)
from beatgrid.audio import AudioError, audio_info, check_audio_content, is_audio_name
from beatgrid.data.dataset_index import read_dataset_index
from beatgrid.data.tracks import EXTRA_COLUMNS, FALSE_WORDS, REJECTED_COLUMNS, TRACK_COLUMNS

__all__ = [
    "walk_files",
    "TrackCandidate",
    "Rejection",
    "ScanResult",
    "scan_synth",
    "scan_beats_dir",
    "scan_label_json",
    "scan_index_csv",
    "check_candidate",
    "build_index",
    "compile_group_pattern",
    "make_track_id",
    "assign_splits",
    "split_of",
    "n_shards_for",
    "shard_of",
    "shard_name",
]


#: Extensions tried after a label's base name, in the order of seed 001.
_LABEL_AUDIO_EXTENSIONS = ("", ".mp3", ".m4a", ".wav", ".flac", ".ogg", ".aif", ".aiff")
_LABEL_SUFFIX = ".labels.json"
#: How far (s) a label JSON's ``duration`` may be from its audio's before the label is taken
#: to belong to another file or edit (decoders pad compressed audio by some tens of ms).
LABEL_DURATION_TOLERANCE_S = 1.0
_MAX_TRACK_ID_LENGTH = 120


@dataclass(frozen=True)
class TrackCandidate:
    """An audio file paired with an annotation, not yet checked."""

    dataset: str  #: the track's dataset (for index_csv: the row's ``dataset``)
    source: str  #: the config dataset it was read from
    stem: str  #: audio file name without extension; the track id is built from it
    audio_path: str
    annotation_path: str
    annotation_format: str  #: ``"beats"``, ``"label_json"`` or ``"jams"`` (:func:`annotation_format_of`)
    has_downbeats_hint: bool = True  #: False when the source says downbeats are unusable
    group: str = ""  #: tracks of one group (index_csv's ``group``) share a split and a fold


@dataclass(frozen=True)
class Rejection:
    """An input left out of the index, and why."""

    dataset: str
    audio_path: str
    annotation_path: str
    reason: str


@dataclass
class ScanResult:
    candidates: list[TrackCandidate] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def extend(self, other: ScanResult) -> None:
        self.candidates.extend(other.candidates)
        self.rejected.extend(other.rejected)


# --------------------------------------------------------------------------- ids, splits, shards


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def make_track_id(dataset: str, stem: str) -> str:
    """A stable, filesystem-safe track id ``<dataset>_<stem>`` from ``[A-Za-z0-9_.-]``.

    Accents are transliterated, other characters become ``_``; the dataset prefix is
    not repeated when the stem already starts with it (``gtzan_blues_00000`` stays
    as is). Ids longer than 120 characters are cut and end in a hash of the full id.
    """
    dataset_part = re.sub(r"[^A-Za-z0-9_.-]+", "_", _ascii(dataset)).strip("._-") or "dataset"
    stem_part = re.sub(r"[^A-Za-z0-9_.-]+", "_", _ascii(stem)).strip("_")
    stem_part = stem_part.lstrip(".-").strip("_") or "track"
    if stem_part.lower().startswith(dataset_part.lower() + "_"):
        track_id = stem_part
    else:
        track_id = f"{dataset_part}_{stem_part}"
    if len(track_id) > _MAX_TRACK_ID_LENGTH:
        digest = hashlib.sha1(f"{dataset}\0{stem}".encode()).hexdigest()[:10]
        track_id = f"{track_id[: _MAX_TRACK_ID_LENGTH - 11]}_{digest}"
    return track_id


def n_shards_for(n_tracks: int, tracks_per_shard: int) -> int:
    """Number of shards: the next power of two >= ceil(n_tracks / tracks_per_shard), min 1.

    A power of two keeps shard membership stable: a track's shard is the low bits of
    its hash (:func:`shard_of`), so adding or removing tracks changes only the shards
    those tracks belong to, and only crossing a power of two re-shuffles tracks (and
    then every shard splits exactly in two). The workflow re-runs per-shard jobs whose
    track list changed, so adding one track re-runs one shard, not all.
    """
    if tracks_per_shard < 1:
        raise ValueError(f"tracks_per_shard must be >= 1, got {tracks_per_shard}")
    needed = max(1, math.ceil(n_tracks / tracks_per_shard))
    return 1 << (needed - 1).bit_length()


def shard_of(track_id: str, n_shards: int) -> int:
    """The shard of a track: the SHA-1 of its id (as an integer) modulo ``n_shards``.

    Depends on nothing but the id and the shard count, not on the other tracks or
    on file-system order (Python's ``hash`` is salted per process, SHA-1 is not).
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return int.from_bytes(hashlib.sha1(track_id.encode("utf-8")).digest(), "big") % n_shards


def shard_name(shard: int) -> str:
    """The shard's name in file paths and in ``tracks.csv``: ``"%03d"``."""
    return f"{shard:03d}"


def split_of(track_id: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """The split of a track that no test dataset holds: a pure function of its id.

    ``u`` = SHA-1 of ``(seed, track_id)`` as a number in [0, 1): ``test`` when
    ``u < test_fraction``, ``val`` when ``u < test_fraction + val_fraction``, else
    ``train``. No other track enters, so adding or removing tracks never moves one
    between splits (a track tested in one run is never trained on in the next); the
    fractions hold on average, not exactly, in each dataset.
    """
    digest = hashlib.sha1(f"{seed}\0{track_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def assign_splits(
    tracks: pd.DataFrame,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    test_datasets: Iterable[str] = (),
) -> pd.DataFrame:
    """Return a copy of ``tracks`` with a ``split`` column (train / val / test).

    Tracks whose ``dataset`` (or ``source``, the config dataset) is in
    ``test_datasets`` are all ``test``, and so is every track of a group one of them is in;
    every other track gets :func:`split_of` its
    ``group`` where the ``group`` column has one (the tracks of a group share a split, so
    no near-copy of a test track is trained on), else its ``track_id``. A track's split
    depends only on its id or group, its dataset's membership of ``test_datasets``, the
    seed and the fractions, never on the other tracks.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"split.{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"split.val_fraction + split.test_fraction must be < 1, got "
            f"{val_fraction} + {test_fraction}"
        )
    held_out = set(test_datasets)
    tracks = tracks.copy()
    whole_test = tracks["dataset"].isin(held_out)
    if "source" in tracks:
        whole_test |= tracks["source"].isin(held_out)
    groups = tracks["group"].fillna("") if "group" in tracks else pd.Series("", index=tracks.index)
    tested_groups = set(groups[whole_test.to_numpy()]) - {""}
    whole_test |= groups.isin(tested_groups).to_numpy()  # a group with a held-out track is held out whole
    split = [
        "test" if held else split_of(group or track_id, seed, val_fraction, test_fraction)
        for track_id, group, held in zip(tracks["track_id"], groups, whole_test)
    ]
    tracks["split"] = pd.Series(split, index=tracks.index, dtype=object)
    return tracks


# --------------------------------------------------------------------------- file search


def _as_given(path: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(os.fspath(path)))


def _require_dir(path: Path, dataset: str, key: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(
            f"dataset {dataset!r}: {key} {str(path)!r} is not a folder "
            f"(relative paths are relative to {os.getcwd()})"
        )


def walk_files(root: Path, keep) -> list[Path]:
    """Files below ``root`` (recursive, following links, skipping hidden entries),
    as ``root / relative`` paths, sorted."""
    found: list[Path] = []
    visited: set[str] = set()
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link cycle
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        relative = Path(folder).relative_to(root)
        for name in filenames:
            if not name.startswith(".") and keep(name):
                found.append(root / relative / name)
    return sorted(found)


def _norm_key(stem: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", _ascii(stem).lower()).strip("_")


def _drop_first_token(key: str) -> str | None:
    head, sep, tail = key.partition("_")
    return tail if sep and tail else None


def _audio_stem(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def _pair_by_name(
    audio_files: Sequence[Path], audio_root: Path, annotation_files: Sequence[Path], annotation_root: Path
) -> tuple[dict[Path, Path], dict[Path, list[Path]]]:
    """Pair each audio file with one annotation (see the module docstring for the rules).

    Returns ``(pairs, ambiguous)``: audio -> annotation, and audio -> the several
    annotations that matched equally well.
    """
    by_relative: dict[tuple, list[Path]] = defaultdict(list)
    by_stem: dict[str, list[Path]] = defaultdict(list)
    by_key: dict[str, list[Path]] = defaultdict(list)
    by_unprefixed_key: dict[str, list[Path]] = defaultdict(list)
    for annotation in annotation_files:
        stem = annotation.stem
        relative = annotation.relative_to(annotation_root)
        by_relative[(relative.parent.as_posix(), stem)].append(annotation)
        by_stem[stem].append(annotation)
        key = _norm_key(stem)
        by_key[key].append(annotation)
        unprefixed = _drop_first_token(key)
        if unprefixed:
            by_unprefixed_key[unprefixed].append(annotation)

    pairs: dict[Path, Path] = {}
    ambiguous: dict[Path, list[Path]] = {}
    for audio in audio_files:
        stem = _audio_stem(audio)
        key = _norm_key(stem)
        unprefixed = _drop_first_token(key)
        relative = audio.relative_to(audio_root)
        lookups = [
            by_relative.get((relative.parent.as_posix(), stem), []),
            by_stem.get(stem, []),
            by_key.get(key, []),
            by_unprefixed_key.get(key, []),  # gtzan_blues_00001.beats for blues.00001.wav
            by_key.get(unprefixed, []) if unprefixed else [],  # the reverse
        ]
        for matches in lookups:
            if len(matches) == 1:
                pairs[audio] = matches[0]
                break
            if len(matches) > 1:
                ambiguous[audio] = sorted(matches)
                break
    return pairs, ambiguous


# --------------------------------------------------------------------------- readers


def scan_beats_dir(
    dataset: str, audio_dir: str | os.PathLike, annotations_dir: str | os.PathLike, source: str | None = None
) -> ScanResult:
    """Pair audio files below ``audio_dir`` with ``.beats`` or ``.jams`` files below ``annotations_dir``,
    then the audio left over with ``.txt`` beat files (unpaired ``.txt`` files are not reported).

    Raises:
        FileNotFoundError: a folder does not exist (a config error, not a bad file).
    """
    audio_root, annotation_root = _as_given(audio_dir), _as_given(annotations_dir)
    _require_dir(audio_root, dataset, "audio_dir")
    _require_dir(annotation_root, dataset, "annotations_dir")
    audio_files = walk_files(audio_root, is_audio_name)
    annotation_files = walk_files(annotation_root, lambda name: Path(name).suffix.lower() in ANNOTATION_SUFFIXES
                                  and Path(name).suffix.lower() != TEXT_SUFFIX)
    pairs, ambiguous = _pair_by_name(audio_files, audio_root, annotation_files, annotation_root)
    # .txt (Harmonix, SMC, Hainsworth) only for audio that no .beats/.jams file claims; a
    # .txt that pairs with nothing is someone's notes, not an annotation, and is left alone
    unpaired = [audio for audio in audio_files if audio not in pairs and audio not in ambiguous]
    text_files = walk_files(annotation_root, lambda name: Path(name).suffix.lower() == TEXT_SUFFIX) if unpaired else []
    if text_files:
        text_pairs, text_ambiguous = _pair_by_name(unpaired, audio_root, text_files, annotation_root)
        pairs.update(text_pairs)
        ambiguous.update(text_ambiguous)

    result = ScanResult()
    used: set[Path] = set()
    for audio in audio_files:
        if audio in pairs:
            annotation = pairs[audio]
            used.add(annotation)
            result.candidates.append(
                TrackCandidate(
                    dataset=dataset,
                    source=source or dataset,
                    stem=_audio_stem(audio),
                    audio_path=audio.as_posix(),
                    annotation_path=annotation.as_posix(),
                    annotation_format=annotation_format_of(annotation),
                )
            )
        elif audio in ambiguous:
            names = ", ".join(p.as_posix() for p in ambiguous[audio])
            result.rejected.append(
                Rejection(dataset, audio.as_posix(), "", f"ambiguous annotation: {names} all match")
            )
        else:
            result.rejected.append(
                Rejection(dataset, audio.as_posix(), "", "no annotation found for audio")
            )
    used.update(p for matches in ambiguous.values() for p in matches)  # reported with the audio
    for annotation in annotation_files:
        if annotation not in used:
            result.rejected.append(
                Rejection(dataset, "", annotation.as_posix(), "no audio found for annotation")
            )
    return result


def scan_synth(dataset: str, batch_dirs: Sequence[str | os.PathLike], n_tracks: int | None = None) -> ScanResult:
    """The demo's batch folders: ``<stem>.wav`` next to ``<stem>.beats`` (the exact
    beats, including tempo drift, rather than the constant-tempo label JSON).

    Batches always render whole (so adding a track never re-renders the tracks beside
    it); only the first ``n_tracks`` demo tracks are indexed.
    """
    from .synth import track_stem

    result = ScanResult()
    for batch_dir in sorted(_as_given(d) for d in batch_dirs):
        result.extend(scan_beats_dir(dataset, batch_dir, batch_dir))
    if n_tracks is not None:
        wanted = {track_stem(i) for i in range(int(n_tracks))}
        result.candidates = [c for c in result.candidates if c.stem in wanted]
    return result


def _peek_file_name(label_path: Path) -> str | None:
    """The label's ``fileName`` if the JSON can be read; errors are reported later."""
    try:
        return read_label_json(label_path).file_name
    except AnnotationError:
        return None


def scan_label_json(
    dataset: str, audio_dir: str | os.PathLike, labels_dir: str | os.PathLike
) -> ScanResult:
    """Pair ``*.labels.json`` below ``labels_dir`` with audio below ``audio_dir``.

    Audio is looked up as seed 001 does, by the label's ``fileName`` and then by its
    base name plus ``"", .mp3, .m4a, .wav, .flac, .ogg, .aif, .aiff`` - first next to
    where the label sits (same sub-folder), then directly in ``audio_dir``, then
    anywhere below it if exactly one file has that name.
    """
    audio_root, label_root = _as_given(audio_dir), _as_given(labels_dir)
    _require_dir(audio_root, dataset, "audio_dir")
    _require_dir(label_root, dataset, "labels_dir")
    audio_files = walk_files(audio_root, lambda name: True)
    by_name: dict[str, list[Path]] = defaultdict(list)
    for audio in audio_files:
        by_name[audio.name].append(audio)
    existing = set(audio_files)
    label_files = walk_files(label_root, lambda name: name.endswith(_LABEL_SUFFIX))

    result = ScanResult()
    used: set[Path] = set()
    for label in label_files:
        base = label.name[: -len(_LABEL_SUFFIX)]
        sub_folder = label.parent.relative_to(label_root)
        file_name = _peek_file_name(label)
        names = []
        if file_name:
            names += [file_name, Path(file_name).name]
        names += [base + ext for ext in _LABEL_AUDIO_EXTENSIONS]
        candidates: list[Path] = []
        for name in dict.fromkeys(names):
            candidates += [audio_root / sub_folder / name, audio_root / name]
        audio = next((p for p in candidates if p in existing), None)
        if audio is None:  # anywhere below audio_dir, when the name is unique there
            for name in dict.fromkeys(Path(n).name for n in names):
                if len(by_name.get(name, [])) == 1:
                    audio = by_name[name][0]
                    break
        if audio is None:
            expected = file_name or f"{base}.*"
            result.rejected.append(
                Rejection(
                    dataset,
                    "",
                    label.as_posix(),
                    f"no audio found for label (looked for {expected} in {audio_root.as_posix()})",
                )
            )
            continue
        used.add(audio)
        result.candidates.append(
            TrackCandidate(
                dataset=dataset,
                source=dataset,
                stem=_audio_stem(audio),
                audio_path=audio.as_posix(),
                annotation_path=label.as_posix(),
                annotation_format=LABEL_JSON_FORMAT,
            )
        )
    for audio in audio_files:
        if audio not in used and is_audio_name(audio.name):
            result.rejected.append(
                Rejection(dataset, audio.as_posix(), "", "no annotation found for audio")
            )
    return result


def scan_index_csv(source: str, path: str | os.PathLike) -> ScanResult:
    """Rows of a seed-000 ``dataset_index.csv`` (:func:`~beatgrid.data.dataset_index.read_dataset_index`);
    paths are relative to the CSV's folder.

    A row's ``dataset`` column names the track's dataset (``source`` when empty). A
    ``has_downbeats`` of false marks the row's downbeats as unusable even when its
    file has bar positions. A ``beats_path`` ending in ``.json`` is read as label JSON.
    Rows of one ``group`` share a split and a cross-validation fold.

    Raises:
        FileNotFoundError: the CSV does not exist.
        ValueError: the CSV cannot be parsed or lacks a required column.
    """
    try:
        rows = read_dataset_index(path)
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"dataset {source!r}: {exc}") from exc
    csv_path = _as_given(path)
    result = ScanResult()
    for row in rows:
        dataset = row.dataset or source
        if not row.audio_path or not row.beats_path:
            empty = "audio_path" if not row.audio_path else "beats_path"
            result.rejected.append(
                Rejection(dataset, row.audio_path, row.beats_path, f"{csv_path} line {row.line}: empty {empty}")
            )
            continue
        annotation_format = annotation_format_of(row.beats_path)
        result.candidates.append(
            TrackCandidate(
                dataset=dataset,
                source=source,
                stem=_audio_stem(Path(row.audio_path)),
                audio_path=row.audio_path,
                annotation_path=row.beats_path,
                annotation_format=annotation_format,
                has_downbeats_hint=row.has_downbeats.lower() not in FALSE_WORDS,
                group=row.group,
            )
        )
    return result


# --------------------------------------------------------------------------- checking


def check_candidate(candidate: TrackCandidate, min_duration_s: float = 0.0) -> dict | Rejection:
    """Read the audio header, decode the audio once (:func:`check_audio_content`:
    non-finite samples, silence only, or less than ``min_duration_s`` seconds reject
    it), read the annotation and validate it against the audio's duration, and return
    the track's row (without id, split, shard) or a :class:`Rejection` with the reason."""

    def reject(reason: str) -> Rejection:
        return Rejection(
            candidate.dataset, candidate.audio_path, candidate.annotation_path, reason
        )

    try:
        duration_s = audio_info(candidate.audio_path).duration_s
        check_audio_content(candidate.audio_path, min_duration_s)
    except AudioError as exc:
        return reject(exc.problem)
    except Exception as exc:  # a bad file must never stop the others
        return reject(f"audio unreadable: {type(exc).__name__}: {exc}")

    try:
        beats_per_bar: int | None
        if candidate.annotation_format == LABEL_JSON_FORMAT:
            grid = read_label_json(candidate.annotation_path)
            if grid.duration_s is not None and abs(grid.duration_s - duration_s) > LABEL_DURATION_TOLERANCE_S:
                return reject(f"label duration {grid.duration_s:.2f} s disagrees with the audio's {duration_s:.2f} s "
                              f"(more than {LABEL_DURATION_TOLERANCE_S:g} s): a label of another file or edit?")
            if not 0.0 <= grid.downbeat_offset_s < duration_s:
                return reject(f"label downbeatOffset {grid.downbeat_offset_s:.2f} s is outside the audio "
                              f"(0-{duration_s:.2f} s)")
            annotation = label_grid_to_annotation(grid, duration_s)
            bpm, beats_per_bar = grid.bpm, grid.beats_per_bar
        else:
            annotation = read_annotation(candidate.annotation_path, candidate.annotation_format)
            bpm, beats_per_bar = annotation.median_bpm, annotation.beats_per_bar
        validate_annotation(annotation, duration_s, candidate.annotation_path)
    except AnnotationError as exc:
        return reject(exc.problem)
    except Exception as exc:
        return reject(f"annotation unreadable: {type(exc).__name__}: {exc}")

    return {
        "dataset": candidate.dataset,
        "audio_path": candidate.audio_path,
        "annotation_path": candidate.annotation_path,
        "annotation_format": candidate.annotation_format,
        "has_downbeats": bool(candidate.has_downbeats_hint and annotation.has_downbeats),
        "duration_s": round(float(duration_s), 6),
        "n_beats": int(annotation.beat_times.size),
        "bpm": round(float(bpm), 3) if np.isfinite(bpm) else float("nan"),
        "beats_per_bar": beats_per_bar,
        "source": candidate.source,
        "group": candidate.group,
        "_stem": candidate.stem,
    }


def compile_group_pattern(pattern: str, where: str) -> re.Pattern:
    """``datasets.<name>.group_pattern`` compiled; ValueError naming ``where`` when it is not a
    regular expression or has no capture group to name the group by."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}: {pattern!r} is not a regular expression: {exc}") from None
    if compiled.groups < 1:
        raise ValueError(f"{where}: {pattern!r} has no capture group (...) to name the group by")
    return compiled


def _group_candidates(scan: ScanResult, pattern: str, where: str) -> ScanResult:
    """``scan`` with each candidate's ``group`` = the first capture group of ``pattern``
    searched in its audio file's stem (an explicit index CSV ``group`` wins; no match: no
    group), so ``Song (Radio Edit)`` and ``Song (Extended Mix)`` can share a split and a fold."""
    compiled = compile_group_pattern(pattern, where)
    grouped = []
    for candidate in scan.candidates:
        match = None if candidate.group else compiled.search(candidate.stem)
        named = match.group(1) if match else None
        grouped.append(dataclasses.replace(candidate, group=named) if named else candidate)
    return ScanResult(grouped, scan.rejected)


def _scan_dataset(
    name: str, config: Mapping, synth_dirs: Mapping[str, Sequence[str | os.PathLike]] | None
) -> ScanResult:
    scan = _scan_dataset_files(name, config, synth_dirs)
    if config.get("group_pattern"):
        scan = _group_candidates(scan, config["group_pattern"], f"datasets.{name}.group_pattern")
    return scan


def _scan_dataset_files(
    name: str, config: Mapping, synth_dirs: Mapping[str, Sequence[str | os.PathLike]] | None
) -> ScanResult:
    fmt = config.get("format")
    if fmt == "synth":
        if not synth_dirs or name not in synth_dirs:
            raise ValueError(f"dataset {name!r} has format synth but no rendered batch folders were given")
        return scan_synth(name, synth_dirs[name], config.get("n_tracks"))
    if fmt == "beats_dir":
        return scan_beats_dir(name, config["audio_dir"], config["annotations_dir"])
    if fmt == "label_json":
        return scan_label_json(name, config["audio_dir"], config["labels_dir"])
    if fmt == "index_csv":
        return scan_index_csv(name, config["path"])
    raise ValueError(f"dataset {name!r}: unknown format {fmt!r}")


def _empty_tracks() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in TRACK_COLUMNS + EXTRA_COLUMNS})


def build_index(
    datasets: Mapping[str, Mapping],
    split: Mapping,
    tracks_per_shard: int,
    synth_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    min_duration_s: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index every dataset of the config; returns ``(tracks, rejected)``.

    Args:
        datasets: ``config["datasets"]``: name -> ``{format: ..., ...}``.
        split: ``config["split"]`` (``val_fraction``, ``test_fraction``, ``seed``,
            ``test_datasets``; schema defaults when absent).
        tracks_per_shard: ``config["features"]["tracks_per_shard"]``.
        synth_dirs: for each ``synth`` dataset, the batch folders the workflow rendered.
        min_duration_s: shortest usable audio in seconds (one analysis frame, n_fft / sr).

    Every input that is not indexed is a row of ``rejected`` with its reason. When
    two tracks get the same id (compared case-insensitively, for case-insensitive
    file systems), the one with the first audio path is kept. Both tables are sorted
    (tracks by ``track_id``, rejected by dataset and paths).

    Raises:
        FileNotFoundError / ValueError: a dataset's folder or CSV is missing or
            malformed, or ``split.test_datasets`` names an unknown dataset.
    """
    scanned = ScanResult()
    for name in sorted(datasets):
        scanned.extend(_scan_dataset(name, datasets[name], synth_dirs))

    test_datasets = list(split.get("test_datasets", []))
    known = set(datasets) | {c.dataset for c in scanned.candidates} | {r.dataset for r in scanned.rejected}
    unknown = sorted(set(test_datasets) - known)
    if unknown:
        raise ValueError(
            f"split.test_datasets names unknown dataset(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )

    rejected = list(scanned.rejected)
    rows: list[dict] = []
    for candidate in sorted(scanned.candidates, key=lambda c: (c.audio_path, c.annotation_path, c.dataset)):
        checked = check_candidate(candidate, min_duration_s)
        if isinstance(checked, Rejection):
            rejected.append(checked)
        else:
            rows.append(checked)

    kept: dict[str, dict] = {}
    for row in rows:  # sorted by audio path: the first one keeps the id
        track_id = make_track_id(row["dataset"], row.pop("_stem"))
        key = track_id.lower()
        if key in kept:
            rejected.append(
                Rejection(
                    row["dataset"],
                    row["audio_path"],
                    row["annotation_path"],
                    f"duplicate track_id {track_id} (also from {kept[key]['audio_path']})",
                )
            )
            continue
        kept[key] = {"track_id": track_id, **row}

    if kept:
        tracks = pd.DataFrame(list(kept.values()))
        tracks["beats_per_bar"] = tracks["beats_per_bar"].astype("Int64")
    else:
        tracks = _empty_tracks()
    tracks = assign_splits(
        tracks,
        val_fraction=float(split.get("val_fraction", 0.15)),
        test_fraction=float(split.get("test_fraction", 0.15)),
        seed=int(split.get("seed", 0)),
        test_datasets=test_datasets,
    )
    n_shards = n_shards_for(len(tracks), tracks_per_shard)
    tracks["shard"] = [shard_name(shard_of(t, n_shards)) for t in tracks["track_id"]]
    tracks = tracks[TRACK_COLUMNS + EXTRA_COLUMNS].sort_values("track_id", kind="stable")
    tracks = tracks.reset_index(drop=True)

    rejected_table = pd.DataFrame(
        [(r.dataset, r.audio_path, r.annotation_path, r.reason) for r in rejected],
        columns=REJECTED_COLUMNS,
    )
    rejected_table = rejected_table.sort_values(REJECTED_COLUMNS, kind="stable").reset_index(drop=True)
    return tracks, rejected_table
