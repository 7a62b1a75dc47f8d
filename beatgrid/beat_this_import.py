"""Import Beat This!'s published spectrograms into beatgrid's mel and target stores.

Beat This! (Foscarin, Schlüter & Widmer, ISMIR 2024) releases the spectrograms of its
16 training datasets because the audio cannot be shared (Zenodo record 13922116,
one ``<dataset>.zip`` per dataset holding ``<dataset>.npz``). Each bundle is an
uncompressed ``.npz`` whose members are ``<piece>/track.npy`` (the original audio)
and, for the training datasets, ``<piece>/track_ps<semitones>.npy`` /
``<piece>/track_ts<percent>.npy`` (pitch-shifted / time-stretched copies); every
array is float16 ``[T, 128]``, 50 fps, computed exactly as :func:`beatgrid.features.log_mel`
with the default :class:`~beatgrid.features.MelConfig`. Unzipping a bundle gives the
same layout as a directory (``<dataset>/<piece>/track.npy``), which is read as well.

The annotations are the ``beat_this_annotations`` repository
(https://github.com/CPJKU/beat_this_annotations): ``<dataset>/annotations/beats/<piece>.beats``,
``<dataset>/info.json`` (``{"has_downbeats": ...}``) and ``<dataset>/single.split``
(``<piece><TAB>train|val``; some datasets name it ``<dataset>_single.split``).

Only the un-augmented ``track`` arrays are imported; beatgrid augments on the fly.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from beatgrid.data.tracks import REJECTED_COLUMNS, TRACK_COLUMNS
from beatgrid.io import atomic_write
from beatgrid.features import BEAT_THIS_MEL_CONFIG, MelConfig

__all__ = ["BeatThisImportError", "import_beat_this_bundle", "read_beat_this_bundle", "beat_this_track_id"]

#: Name of the un-augmented spectrogram of a piece inside a bundle.
UNAUGMENTED = "track"



class BeatThisImportError(ValueError):
    """A bundle or annotation folder cannot be imported; the message names the path."""


def beat_this_track_id(dataset: str, piece: str) -> str:
    """Filesystem-safe track id of a piece: the piece name (Beat This! already prefixes
    it with the dataset, e.g. ``gtzan_blues_00000``), prefixed with ``<dataset>_`` when
    it is not, with characters outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    track_id = piece if piece.startswith(f"{dataset}_") else f"{dataset}_{piece}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", track_id)


def read_beat_this_bundle(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(piece, spectrogram)`` for every un-augmented spectrogram of a bundle, in
    name order: from a ``.npz`` (members ``<piece>/track.npy``) or from its unzipped
    directory (``<piece>/track.npy``). Arrays are returned as stored (float16 ``[T, 128]``).

    Raises:
        BeatThisImportError: the path is missing or not a bundle, or holds no ``track`` arrays.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob(f"*/{UNAUGMENTED}.npy"))
        if not files:
            raise BeatThisImportError(f"{path}: no '<piece>/{UNAUGMENTED}.npy' spectrograms in this folder")
        for file in files:
            yield file.parent.name, np.load(file)
        return
    if not path.is_file():
        raise BeatThisImportError(f"{path}: spectrogram bundle not found")
    try:
        bundle = np.load(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BeatThisImportError(f"{path}: not a readable .npz bundle ({exc})") from exc
    if not isinstance(bundle, np.lib.npyio.NpzFile):
        raise BeatThisImportError(f"{path}: a single array, not an .npz bundle of spectrograms")
    with bundle:
        keys = sorted(k for k in bundle.files if k.rsplit("/", 1)[-1] == UNAUGMENTED and "/" in k)
        if not keys:
            raise BeatThisImportError(
                f"{path}: no '<piece>/{UNAUGMENTED}' spectrograms among its {len(bundle.files)} members"
            )
        for key in keys:
            yield key.rsplit("/", 1)[0], bundle[key]


def _dataset_folder(annotations_dir: Path, dataset: str) -> Path:
    """The folder holding ``annotations/beats`` of ``dataset``: ``annotations_dir/<dataset>``
    (a clone of beat_this_annotations) or ``annotations_dir`` itself."""
    for candidate in (annotations_dir / dataset, annotations_dir):
        if (candidate / "annotations" / "beats").is_dir():
            return candidate
    raise BeatThisImportError(
        f"{annotations_dir}: no '{dataset}/annotations/beats' (nor 'annotations/beats') folder; "
        f"pass the root of a beat_this_annotations clone"
    )


def _read_splits(folder: Path, dataset: str) -> dict[str, str]:
    for name in ("single.split", f"{dataset}_single.split"):
        split_file = folder / name
        if split_file.is_file():
            table = pd.read_csv(split_file, sep="\t", header=None, names=["piece", "split"], dtype=str)
            return dict(zip(table["piece"], table["split"].str.strip()))
    return {}


def _dataset_has_downbeats(folder: Path) -> bool | None:
    info = folder / "info.json"
    if not info.is_file():
        return None
    try:
        return bool(json.loads(info.read_text())["has_downbeats"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BeatThisImportError(f"{info}: expected {{\"has_downbeats\": true|false}} ({exc})") from exc


def _spectrogram_problem(spect: np.ndarray, n_mels: int) -> str | None:
    """Why a bundle's spectrogram cannot be imported, or None."""
    if spect.ndim != 2 or spect.shape[1] != n_mels or spect.shape[0] == 0:
        return f"spectrogram has shape {spect.shape}, expected [T, {n_mels}]"
    if not np.all(np.isfinite(spect)):
        return "spectrogram has non-finite values"
    return None


def _write_tables(tracks: pd.DataFrame, rejected: pd.DataFrame, tracks_csv: str | os.PathLike | None,
                  rejected_csv: str | os.PathLike | None) -> None:
    for table, path in ((tracks, tracks_csv), (rejected, rejected_csv)):
        if path is not None:
            atomic_write(path, partial(table.to_csv, index=False))


def import_beat_this_bundle(
    npz_path: str | os.PathLike,
    annotations_dir: str | os.PathLike,
    out_mel_path: str | os.PathLike,
    out_tracks_csv: str | os.PathLike | None = None,
    dataset_name: str | None = None,
    *,
    out_targets_path: str | os.PathLike | None = None,
    out_rejected_csv: str | os.PathLike | None = None,
    cfg: MelConfig = BEAT_THIS_MEL_CONFIG,
    split: str | None = None,
    widen_frames: int = 1,
    widen_value: float = 0.5,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Import one Beat This! spectrogram bundle into a mel store (and a target store).

    Args:
        npz_path: ``<dataset>.npz`` or its unzipped folder.
        annotations_dir: root of a ``beat_this_annotations`` clone (or the dataset's own
            folder holding ``annotations/beats``).
        out_mel_path: the mel store to write (layout and attrs of
            :func:`beatgrid.features.compute_shard_mels`, plus ``source``).
        out_tracks_csv: optional table of the imported tracks in the columns of
            ``tracks.csv``; ``audio_path`` is empty (there is no audio), ``shard`` is the
            store's file stem, ``duration_s`` is ``T / fps``.
        dataset_name: defaults to the bundle's stem (``gtzan`` for ``gtzan.npz``).
        out_targets_path: optional target store (layout of
            :func:`beatgrid.features.compute_shard_targets`) from the annotations.
        out_rejected_csv: optional table of the pieces left out and why, in the columns of the
            index's ``rejected.csv`` (``audio_path``: the piece's array in the bundle).
        cfg: the mel settings of the store being filled; must be Beat This!'s.
        split: split for every track; by default the dataset's ``single.split``
            (``train``/``val``), else ``train``. Use ``"test"`` for GTZAN.

    Returns:
        ``(tracks, rejected)`` DataFrames. Pieces without a readable annotation, with
        beats past their end, or with a malformed array are rejected with a reason
        (and a warning), never dropped silently.

    Raises:
        BeatThisImportError: ``cfg`` differs from Beat This!'s settings, or the bundle or
            annotation folder is unusable.
    """
    from beatgrid.annotations import AnnotationError, read_beats_file, validate_annotation
    from beatgrid.data.store import atomic_h5, write_track
    from beatgrid.features import write_track_targets

    if cfg != BEAT_THIS_MEL_CONFIG:
        raise BeatThisImportError(
            f"Beat This! spectrograms are {BEAT_THIS_MEL_CONFIG.as_dict()}, but the mel store is "
            f"configured as {cfg.as_dict()}; importing would mix incompatible spectrograms. "
            f"Use the default features settings to train on imported spectrograms."
        )
    npz_path, annotations_dir = Path(npz_path), Path(annotations_dir)
    dataset = dataset_name or npz_path.stem
    folder = _dataset_folder(annotations_dir, dataset)
    beats_dir = folder / "annotations" / "beats"
    splits = {} if split is not None else _read_splits(folder, dataset)
    dataset_downbeats = _dataset_has_downbeats(folder)
    fps = cfg.fps
    shard = Path(out_mel_path).stem

    tracks: list[dict] = []
    rejected: list[dict] = []
    seen: set[str] = set()
    source = f"beat_this:{npz_path.name}"
    mel_attrs = {**cfg.store_attrs(), "source": source}
    target_attrs = {"fps": fps, "sr": cfg.sr, "hop_length": cfg.hop_length,
                    "widen_frames": int(widen_frames), "widen_value": float(widen_value), "source": source}

    def reject(piece: str, reason: str) -> None:  # the index's rejected.csv columns; the array stands in for audio
        rejected.append({"dataset": dataset, "audio_path": f"{npz_path}:{piece}/{UNAUGMENTED}",
                         "annotation_path": str(beats_dir / f"{piece}.beats"), "reason": reason})

    target_store = atomic_h5(out_targets_path, attrs=target_attrs) if out_targets_path else nullcontext()
    with atomic_h5(out_mel_path, attrs=mel_attrs) as mel_h5, target_store as target_h5:
        for piece, spect in tqdm(read_beat_this_bundle(npz_path), desc=f"import {dataset}",
                                 unit="track", disable=not progress):
            problem = _spectrogram_problem(spect, cfg.n_mels)
            if problem is not None:
                reject(piece, problem)
                continue
            track_id = beat_this_track_id(dataset, piece)
            if track_id in seen:
                reject(piece, f"duplicate track id {track_id!r}")
                continue
            annotation_path = beats_dir / f"{piece}.beats"
            n_frames = spect.shape[0]
            try:
                annotation = read_beats_file(annotation_path)
                validate_annotation(annotation, n_frames / fps, annotation_path)
            except AnnotationError as exc:
                reject(piece, exc.problem)
                continue
            seen.add(track_id)
            has_downbeats = annotation.has_downbeats and dataset_downbeats is not False
            write_track(mel_h5, track_id, {"mel": np.asarray(spect, dtype=np.float16)})
            if target_h5 is not None:
                write_track_targets(target_h5, track_id, annotation, has_downbeats, n_frames, fps,
                                    widen_frames, widen_value)
            tracks.append({
                "track_id": track_id, "dataset": dataset, "audio_path": "",
                "annotation_path": str(annotation_path), "annotation_format": "beats",
                "has_downbeats": bool(has_downbeats), "duration_s": round(n_frames / fps, 6),
                "split": split if split is not None else splits.get(piece, "train"), "shard": shard,
            })

    tracks_df = pd.DataFrame(tracks, columns=TRACK_COLUMNS)
    rejected_df = pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
    _write_tables(tracks_df, rejected_df, out_tracks_csv, out_rejected_csv)
    if len(rejected_df):
        warnings.warn(f"{npz_path}: {len(rejected_df)} of {len(rejected_df) + len(tracks_df)} pieces "
                      f"not imported (first: {rejected[0]['audio_path']}: {rejected[0]['reason']})", stacklevel=2)
    return tracks_df, rejected_df


def main(argv: list[str] | None = None) -> int:
    """``python -m beatgrid.beat_this_import BUNDLE ANNOTATIONS --out DIR``: writes
    ``DIR/mels/<dataset>.h5``, ``DIR/targets/<dataset>.h5``, ``DIR/<dataset>_tracks.csv``
    and ``DIR/<dataset>_rejected.csv``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m beatgrid.beat_this_import",
        description="Import a Beat This! spectrogram bundle (<dataset>.npz or its unzipped folder) "
                    "into beatgrid's mel and target stores.")
    parser.add_argument("bundle", help="<dataset>.npz from Zenodo record 13922116, or its unzipped folder")
    parser.add_argument("annotations", help="root of a beat_this_annotations clone")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--dataset", help="dataset name (default: the bundle's stem)")
    parser.add_argument("--split", help="split for every track (default: the dataset's single.split, else train)")
    parser.add_argument("--widen-frames", type=int, default=1)
    parser.add_argument("--widen-value", type=float, default=0.5)
    args = parser.parse_args(argv)
    dataset = args.dataset or Path(args.bundle).stem
    out = Path(args.out)
    tracks, rejected = import_beat_this_bundle(
        args.bundle, args.annotations, out / "mels" / f"{dataset}.h5", out / f"{dataset}_tracks.csv",
        dataset, out_targets_path=out / "targets" / f"{dataset}.h5",
        out_rejected_csv=out / f"{dataset}_rejected.csv", split=args.split,
        widen_frames=args.widen_frames, widen_value=args.widen_value,
    )
    print(f"imported {len(tracks)} tracks of {dataset} into {out}; {len(rejected)} left out "
          f"(see {out / f'{dataset}_rejected.csv'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
