"""beatgrid.data.folds: K folds of track ids by a hash of each id."""

import numpy as np
import pytest

from beatgrid.data.folds import assign_folds, hash_ranked, without_fold


def test_assign_folds_balanced_stable_and_seeded():
    ids = [f"track{i}" for i in range(20)]
    folds = assign_folds(ids, 3, seed=0)
    assert set(folds) == set(ids)
    assert sorted(np.bincount(list(folds.values()))) == [6, 7, 7]
    assert assign_folds(list(reversed(ids)), 3, seed=0) == folds  # order does not matter
    assert assign_folds(ids, 3, seed=1) != folds
    with pytest.raises(ValueError, match="folds"):
        assign_folds(ids, 1)
    with pytest.raises(ValueError, match="cannot split 2"):
        assign_folds(ids[:2], 3)


def test_hash_ranked_ignores_order_and_duplicates_and_depends_on_the_seed():
    ids = [f"t{i}" for i in range(12)]
    ranked = hash_ranked(ids, 5)
    assert sorted(ranked) == sorted(ids)
    assert hash_ranked([*reversed(ids), "t3"], 5) == ranked
    assert hash_ranked(ids, 6) != ranked
    # adding a track keeps the others' relative order
    assert [t for t in hash_ranked([*ids, "new"], 5) if t != "new"] == ranked


def test_without_fold_keeps_the_order_and_leaves_out_exactly_that_fold():
    ids = [f"t{i}" for i in range(10)]
    fold_of = assign_folds(ids, 3, 7)
    for fold in range(3):
        kept = without_fold(ids, fold, 3, 7)
        assert kept == [t for t in ids if fold_of[t] != fold]
    for fold, folds in ((3, 3), (-1, 3), (0, None)):
        with pytest.raises(ValueError, match="fold must be in 0.."):
            without_fold(ids, fold, folds)


def test_a_group_shares_one_fold_and_singletons_deal_as_before():
    ids = [f"t{i}" for i in range(20)]
    groups = {"t0": "piece1", "t1": "piece1", "t2": "piece1", "t5": "piece2", "t6": "piece2", "t7": ""}
    folds = assign_folds(ids, 4, seed=3, groups=groups)
    assert folds["t0"] == folds["t1"] == folds["t2"] and folds["t5"] == folds["t6"]
    assert sorted(np.bincount(list(folds.values()))) == [5, 5, 5, 5]  # greedy fill stays balanced here
    # without groups (or with every track its own group) the deal is the round robin of the ranks
    plain = {t: rank % 4 for rank, t in enumerate(hash_ranked(ids, 3))}
    assert assign_folds(ids, 4, seed=3) == plain
    assert assign_folds(ids, 4, seed=3, groups={t: "" for t in ids}) == plain
    # fold models never train on a member of a group they are scored on
    for fold in range(4):
        trained = without_fold(ids, fold, 4, 3, groups)
        held_out = [t for t in ids if folds[t] == fold]
        trained_groups = {groups.get(t) for t in trained if groups.get(t)}
        assert not trained_groups & {groups.get(t) for t in held_out if groups.get(t)}
    with pytest.raises(ValueError, match="cannot split 4 training track.s. in 2 group.s. into 3 folds"):
        assign_folds(["a", "b", "c", "d"], 3, groups={"a": "x", "b": "x", "c": "y", "d": "y"})
