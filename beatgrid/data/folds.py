"""K-fold assignment of tracks by a hash of their ids, for out-of-fold CRNN activations and
the adaptation's cross-validation.

A track's rank is the order of ``sha1(f"{seed}:{track_id}")``: stable across machines and
independent of the order the ids come in, so adding a track moves no other track's fold
more than the round-robin deal requires.

Tracks of one group (``groups``: the index's ``group`` column, e.g. two mixes or edits of
one piece) always share a fold, so no model is scored on a near-copy of a track it
trained on. A track without a group is a group of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["hash_ranked", "assign_folds", "without_fold"]


def hash_ranked(track_ids: Iterable[str], seed: int = 0) -> list[str]:
    """Track ids (duplicates dropped) in the order of ``sha1(f"{seed}:{track_id}")``."""
    return sorted(dict.fromkeys(track_ids), key=lambda t: hashlib.sha1(f"{seed}:{t}".encode()).hexdigest())


def assign_folds(track_ids: Iterable[str], folds: int, seed: int = 0,
                 groups: Mapping[str, str] | None = None) -> dict[str, int]:
    """Fold (0 .. folds-1) of every track.

    The groups (``groups[track_id]``; a track without one is its own group, named by its id),
    ranked as :func:`hash_ranked` ranks names, go one by one to the fold with the fewest
    tracks so far (the lowest on a tie). Without groups this is the round-robin deal of
    the hash-ranked ids: folds differ in size by at most one track. ValueError for
    ``folds`` < 2 or fewer groups than folds.
    """
    if int(folds) != folds or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    members: dict[str, list[str]] = {}
    for track_id in dict.fromkeys(track_ids):
        members.setdefault((groups or {}).get(track_id) or track_id, []).append(track_id)
    if len(members) < folds:
        n_tracks = sum(map(len, members.values()))
        in_groups = f" in {len(members)} group(s)" if len(members) < n_tracks else ""
        raise ValueError(f"cannot split {n_tracks} training track(s){in_groups} into {folds} folds")
    sizes = [0] * int(folds)
    fold_of: dict[str, int] = {}
    for name in hash_ranked(members, seed):
        fold = sizes.index(min(sizes))
        sizes[fold] += len(members[name])
        fold_of.update(dict.fromkeys(members[name], fold))
    return fold_of


def without_fold(track_ids: Sequence[str], fold: int, folds: int | None, seed: int = 0,
                 groups: Mapping[str, str] | None = None) -> list[str]:
    """``track_ids`` (in their order) less those of ``fold``: what fold model ``fold`` trains on."""
    if folds is None or not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{'folds - 1' if folds is None else folds - 1}, got {fold}")
    fold_of = assign_folds(track_ids, folds, seed, groups)
    return [t for t in track_ids if fold_of[t] != fold]
