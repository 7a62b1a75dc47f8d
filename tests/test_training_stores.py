"""beatgrid.training.stores: the tracks a model trains and validates on, and their datasets."""

import numpy as np
import pytest

from beatgrid.data.store import atomic_h5, record_dropped, write_track
from beatgrid.training.config import TrainConfig
from beatgrid.training.stores import TrainingStores
from tests.index_table import index_table

N_FRAMES = {"a": 300, "b": 120, "c": 80, "e": 90}


@pytest.fixture()
def stores(tmp_path):
    """Tracks a, b (train), c (val), e (test) in a mel and a target store; d (train) dropped by the mel job."""
    with atomic_h5(tmp_path / "mels.h5", {"fps": 50.0}) as mels, atomic_h5(tmp_path / "targets.h5", {"fps": 50.0}) as targets:
        record_dropped(mels, {"d": "audio could not be decoded"})
        for track_id, n_frames in N_FRAMES.items():
            write_track(mels, track_id, {"mel": np.zeros((n_frames, 4), np.float16)})
            write_track(targets, track_id, {"beat": np.zeros(n_frames, np.float32),
                                            "downbeat": np.zeros(n_frames, np.float32)})
    index_table(["a", "b", "c", "d", "e"], ["train", "train", "val", "train", "test"]).to_csv(
        tmp_path / "tracks.csv", index=False)
    return TrainingStores([tmp_path / "mels.h5"], [tmp_path / "targets.h5"], tmp_path / "tracks.csv")


def test_paths_are_kept_as_strings(stores, tmp_path):
    assert stores.inputs == [str(tmp_path / "mels.h5")] and stores.tracks_csv == str(tmp_path / "tracks.csv")


def test_split_ids_leave_out_the_tracks_a_store_job_dropped(stores):
    assert stores.split_ids() == {"train": ["a", "b"], "val": ["c"], "test": ["e"]}


def test_datasets_crop_the_training_tracks_and_keep_validation_tracks_whole(stores):
    train_cfg = TrainConfig.from_dict({"crop_frames": 100, "seed": 0})
    train_set, val_set = stores.datasets("mel", ["a", "b"], ["c"], train_cfg, memory_budget_gb=1.0)
    assert train_set.track_ids == ["a", "b"] and val_set.track_ids == ["c"]
    assert len(train_set) >= (300 + 120) // 100  # every frame served about once per epoch
    assert val_set[0][0].shape == (80, 4)
    assert stores.datasets("mel", ["a"], [], train_cfg, memory_budget_gb=1.0)[1] is None
