"""K-fold assignment of tracks by a hash of their ids, for out-of-fold CRNN activations and
the adaptation's cross-validation.

A track's rank is the order of ``sha1(f"{seed}:{track_id}")``: stable across machines and
independent of the order the ids come in, so adding a track moves no other track's fold
more than the round-robin deal requires.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = ["hash_ranked", "assign_folds", "without_fold"]


def hash_ranked(track_ids: Iterable[str], seed: int = 0) -> list[str]:
    """Track ids (duplicates dropped) in the order of ``sha1(f"{seed}:{track_id}")``."""
    return sorted(dict.fromkeys(track_ids), key=lambda t: hashlib.sha1(f"{seed}:{t}".encode()).hexdigest())


def assign_folds(track_ids: Iterable[str], folds: int, seed: int = 0) -> dict[str, int]:
    """Fold (0 .. folds-1) of every track: the hash-ranked ids dealt round-robin, so folds
    differ in size by at most one track; ValueError for ``folds`` < 2 or fewer tracks."""
    if int(folds) != folds or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    ranked = hash_ranked(track_ids, seed)
    if len(ranked) < folds:
        raise ValueError(f"cannot split {len(ranked)} training track(s) into {folds} folds")
    return {track_id: rank % int(folds) for rank, track_id in enumerate(ranked)}


def without_fold(track_ids: Sequence[str], fold: int, folds: int | None, seed: int = 0) -> list[str]:
    """``track_ids`` (in their order) less those of ``fold``: what fold model ``fold`` trains on."""
    if folds is None or not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{'folds - 1' if folds is None else folds - 1}, got {fold}")
    fold_of = assign_folds(track_ids, folds, seed)
    return [t for t in track_ids if fold_of[t] != fold]
