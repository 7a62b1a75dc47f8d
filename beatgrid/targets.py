"""Frame targets: events (beat or downbeat frames) rendered into a target column ``[T]``,
and read back from one.

The lowest layer that knows what a target column means: the augmentation re-renders the
targets of a stretched crop, and the trainer's validation reads the annotated events back.
"""

from __future__ import annotations

import numpy as np

__all__ = ["target_event_frames", "render_targets"]


def target_event_frames(target: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Frames of the annotated events in one target column ``[T]``.

    An event is a run of frames above ``threshold``; its frame is the run's centre
    (rounded down). With the default widening (value 0.5 next to the beat frame) every
    run is the single annotated frame.
    """
    above = np.asarray(target) > threshold
    if not above.any():
        return np.zeros(0, dtype=np.int64)
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # exclusive
    return (starts + (stops - 1 - starts) // 2).astype(np.int64)


def render_targets(event_frames: np.ndarray, n_frames: int, widen_frames: int = 1,
                   widen_value: float = 0.5, *, widen_from_outside: bool = False) -> np.ndarray:
    """One target column ``[n_frames]``: 1 at each event, ``widen_value`` within
    ``widen_frames`` of it (the larger value wins where events are close).

    Events outside ``[0, n_frames)`` are dropped; with ``widen_from_outside`` their
    widening still reaches into the column (a whole track's annotated beat just past its
    last frame), else they leave no trace (a crop's re-rendered events).
    """
    column = np.zeros(int(n_frames), dtype=np.float32)
    events = np.asarray(event_frames, dtype=np.int64).reshape(-1)
    inside = events[(events >= 0) & (events < n_frames)]
    widened = events if widen_from_outside else inside
    for offset in range(1, int(widen_frames) + 1):
        for shifted in (widened - offset, widened + offset):
            shifted = shifted[(shifted >= 0) & (shifted < n_frames)]
            column[shifted] = np.maximum(column[shifted], widen_value)
    column[inside] = 1.0
    return column
