"""What the report reads: the example tracks (stores, predictions), flagged grids, left-out inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..evaluation import SPLIT_ORDER
from ..predictions import read_prediction_beats

__all__ = ["select_examples", "collect_examples", "flag_tracks", "left_out_inputs", "report_split",
           "chosen_variants"]


def report_split(per_track: pd.DataFrame) -> str | None:
    """The split the report's plots show: the first of test, val, train that has rows."""
    present = set(per_track["split"]) if "split" in per_track else set()
    for split in SPLIT_ORDER:
        if split in present:
            return split
    return sorted(present)[0] if present else None


def chosen_variants(per_track: pd.DataFrame, summary: pd.DataFrame | None) -> dict[str, str]:
    """Base method -> the variant the summary reports (every method when no summary)."""
    if summary is not None and not summary.empty and "variant" in summary:
        pairs = summary[["method", "variant"]].drop_duplicates()
        return dict(zip(pairs["method"], pairs["variant"]))
    return {m: m for m in dict.fromkeys(per_track.get("method", []))}


def select_examples(
    per_track: pd.DataFrame,
    method: str,
    n_best: int = 2,
    n_worst: int = 2,
    metric: str = "beat_f",
    split: str | None = None,
) -> list[dict[str, Any]]:
    """Pick the best and worst tracks of ``method`` by ``metric`` for the per-track panels.

    Args:
        per_track: per-track scores.
        method: method (variant) name whose scores rank the tracks.
        n_best, n_worst: how many of each; a track is never picked twice.
        metric: ranking metric (higher = better).
        split: split to pick from; default the first of test, val, train present.

    Returns:
        ``[{"track_id", "label" ("best"/"worst"), "method", "score"}]``, worst first.
    """
    split = split or report_split(per_track)
    rows = per_track[(per_track["method"] == method) & (per_track["split"] == split)]
    rows = rows[np.isfinite(rows[metric].to_numpy(dtype=float))].sort_values([metric, "track_id"])
    worst = rows.head(n_worst)
    best = rows[~rows["track_id"].isin(worst["track_id"])].tail(n_best).iloc[::-1]
    picked = [("worst", r) for r in worst.to_dict("records")] + [("best", r) for r in best.to_dict("records")]
    return [
        {"track_id": r["track_id"], "label": label, "method": method, "score": float(r[metric])} for label, r in picked
    ]


def _store_path(store: str | Path | Mapping[str, str | Path] | None, shard) -> Path | None:
    if store is None:
        return None
    text = str(shard).strip()
    name = f"{int(float(text)):03d}" if text.replace(".", "", 1).isdigit() else text
    if isinstance(store, Mapping):
        path = store.get(name)
        return Path(path) if path is not None else None
    return Path(store) / f"{name}.h5"


def _read_h5(path: Path | None, track_id: str, name: str) -> tuple[np.ndarray | None, float | None]:
    """(array, fps attribute) of ``/tracks/<id>/<name>`` or (None, None) when absent."""
    if path is None or not path.is_file():
        return None, None
    from ..data.store import open_store

    with open_store(path) as h5:
        key = f"tracks/{track_id}/{name}"
        if key not in h5:
            return None, None
        fps = h5.attrs.get("fps")
        return np.asarray(h5[key][()], dtype=np.float32), (float(fps) if fps is not None else None)


def collect_examples(
    selected: Sequence[Mapping[str, Any]],
    tracks: pd.DataFrame,
    references: Mapping[str, Any],
    prediction_dirs: Mapping[str, str | Path],
    mel_store: str | Path | Mapping[str, str | Path] | None = None,
    activation_store: str | Path | Mapping[str, str | Path] | None = None,
    fps: float = 50.0,
) -> list[dict[str, Any]]:
    """Load what the per-track panels show for the tracks chosen by :func:`select_examples`.

    Args:
        selected: ``[{"track_id", "label", ...}]``.
        tracks: the index (for ``shard``, ``dataset``, ``duration_s``).
        references: track_id -> :class:`beatgrid.evaluation.Reference`.
        prediction_dirs: method name (as shown in the panel) -> prediction folder.
        mel_store, activation_store: folder of ``{shard}.h5`` stores, or shard -> path;
            ``None`` leaves the panel row out.
        fps: frame rate when a store has no ``fps`` attribute.

    Returns:
        example dicts for :func:`build_report`.
    """
    index = tracks.set_index(tracks["track_id"].astype(str))
    examples = []
    for item in selected:
        track_id = str(item["track_id"])
        row = index.loc[track_id]
        mel, mel_fps = _read_h5(_store_path(mel_store, row["shard"]), track_id, "mel")
        activations, act_fps = _read_h5(_store_path(activation_store, row["shard"]), track_id, "activations")
        predictions = {}
        for method, pred_dir in prediction_dirs.items():
            path = Path(pred_dir) / f"{track_id}.beats"
            if path.is_file():
                predictions[method] = read_prediction_beats(path)
        ref = references[track_id]
        examples.append(
            {
                **dict(item),
                "track_id": track_id,
                "dataset": row.get("dataset"),
                "duration_s": float(row["duration_s"]) if "duration_s" in row else None,
                "mel": mel,
                "activations": activations,
                "fps": mel_fps or act_fps or fps,
                "ref_beats": ref.beat_times,
                "ref_downbeats": ref.downbeat_times,
                "predictions": predictions,
            }
        )
    return examples


def flag_tracks(per_track: pd.DataFrame, confidence_threshold: float = 0.5) -> pd.DataFrame:
    """Beatgrid predictions whose confidence is below ``confidence_threshold``, least confident first."""
    if "grid_confidence" not in per_track:
        return per_track.iloc[0:0]
    flagged = per_track[per_track["grid_confidence"] < confidence_threshold]
    columns = [
        c
        for c in (
            "method", "track_id", "dataset", "split", "grid_confidence", "est_bpm", "ref_bpm",
            "tempo_acc1", "grid_phase_error_ms", "beat_f",
        )
        if c in per_track
    ]  # fmt: skip
    return flagged.sort_values(["grid_confidence", "method", "track_id"])[columns].reset_index(drop=True)



def left_out_inputs(rejected_csv: str | Path | None, dropped_from: Iterable[str | Path] = ()) -> pd.DataFrame:
    """Every input that is in no result: ``stage`` (``index`` or ``shard job``), ``file``
    (or track id) and ``reason``, from ``rejected.csv`` and the stores' dropped tracks."""
    from ..data.store import read_dropped

    rows = []
    if rejected_csv is not None and Path(rejected_csv).is_file():
        rejected = pd.read_csv(rejected_csv, dtype=str, keep_default_na=False)
        for row in rejected.to_dict("records"):
            rows.append({"stage": "index", "file": row.get("audio_path") or row.get("annotation_path", ""),
                         "reason": row.get("reason", "")})
    for track_id, reason in read_dropped(list(dropped_from)).items():
        rows.append({"stage": "shard job", "file": track_id, "reason": reason})
    return pd.DataFrame(rows, columns=["stage", "file", "reason"])

