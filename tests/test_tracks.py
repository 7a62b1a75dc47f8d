"""beatgrid.data.tracks: tracks.csv's columns, its reader (types restored) and writer, yes/no cells."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from beatgrid.data.tracks import (
    EXTRA_COLUMNS,
    FALSE_WORDS,
    REJECTED_COLUMNS,
    TRACK_COLUMNS,
    TRUE_WORDS,
    read_index,
    track_groups,
    truthy,
    write_index,
)


def index_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": ["001", "NA"], "dataset": ["demo", "demo"], "audio_path": ["a.wav", "b.wav"],
        "annotation_path": ["a.beats", "b.beats"], "annotation_format": ["beats", "beats"],
        "has_downbeats": ["yes", "F"], "duration_s": ["30", "12.5"], "split": ["train", "test"],
        "shard": ["000", "007"], "n_beats": [60, ""], "bpm": [120.0, ""], "beats_per_bar": [4, ""],
        "source": ["demo", "demo"], "group": ["NA", ""],
    })


def test_read_index_restores_types_and_keeps_ids_as_written(tmp_path):
    write_index(index_rows(), pd.DataFrame(columns=REJECTED_COLUMNS), tmp_path / "tracks.csv",
                tmp_path / "rejected.csv")
    tracks = read_index(tmp_path / "tracks.csv")
    assert list(tracks.columns) == TRACK_COLUMNS + EXTRA_COLUMNS
    assert tracks["track_id"].tolist() == ["001", "NA"]  # neither a number nor a missing value
    assert tracks["shard"].tolist() == ["000", "007"]
    assert tracks["has_downbeats"].tolist() == [True, False] and tracks["has_downbeats"].dtype == bool
    assert tracks["duration_s"].tolist() == [30.0, 12.5]
    assert tracks["beats_per_bar"].iloc[0] == 4 and pd.isna(tracks["beats_per_bar"].iloc[1])
    assert math.isnan(tracks["bpm"].iloc[1])
    assert tracks["group"].tolist() == ["NA", ""]  # a name, and empty for none
    assert track_groups(tracks) == {"001": "NA"}
    assert track_groups(tracks.drop(columns="group")) == {}  # an index from before the column
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rejected.csv", "tracks.csv"]  # no temp files


def test_read_index_names_the_file_and_the_missing_columns(tmp_path):
    index_rows().drop(columns=["split", "shard"]).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match=r"old.csv: not a tracks index, lacks split, shard"):
        read_index(tmp_path / "old.csv")
    # a training table needs its ids and splits only
    pd.DataFrame({"track_id": ["007"], "split": ["train"]}).to_csv(tmp_path / "train.csv", index=False)
    assert read_index(tmp_path / "train.csv", required=("track_id", "split"))["track_id"].tolist() == ["007"]


@pytest.mark.parametrize("value", [True, 1, np.bool_(True), *sorted(TRUE_WORDS), " Yes ", "TRUE"])
def test_truthy_accepts_the_true_words_and_true_values(value):
    assert truthy(value)


@pytest.mark.parametrize("value", [False, 0, None, math.nan, "", *sorted(FALSE_WORDS), "maybe"])
def test_truthy_rejects_everything_else(value):
    assert not truthy(value)
