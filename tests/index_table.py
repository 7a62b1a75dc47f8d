"""tracks.csv indexes for tests: every column read_index requires, the rest filled in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from beatgrid.data.tracks import TRACK_COLUMNS


def index_table(track_ids: Sequence[str], split: Sequence[str] | str = "train", **columns: Any) -> pd.DataFrame:
    """Index rows of ``track_ids`` (columns :data:`~beatgrid.data.tracks.TRACK_COLUMNS`, then any
    other ``columns``): audio ``<id>.wav``, annotation ``<id>.beats``, 30 s, downbeats, shard 000."""
    table = pd.DataFrame({"track_id": list(track_ids)})
    table = table.assign(dataset="demo", audio_path=table["track_id"] + ".wav",
                         annotation_path=table["track_id"] + ".beats", annotation_format="beats",
                         has_downbeats=True, duration_s=30.0, split=split, shard="000")
    return table.assign(**columns)[TRACK_COLUMNS + [c for c in columns if c not in TRACK_COLUMNS]]
