"""Frame targets: rendering events into a column and reading them back."""

import numpy as np

from beatgrid.targets import render_targets, target_event_frames


def test_event_frames_and_rendering_are_inverse():
    events = np.array([0, 5, 6, 30, 99])  # at the edge and next to each other
    column = render_targets(events, 100, widen_frames=1, widen_value=0.5)
    assert column[[0, 5, 6, 30, 99]].tolist() == [1.0] * 5
    assert column[[1, 4, 7, 29, 31, 98]].tolist() == [0.5] * 6
    # events on adjacent frames form one run and read back as one event
    np.testing.assert_array_equal(target_event_frames(column), [0, 5, 30, 99])
    wide = render_targets(np.array([10, 50]), 80, widen_frames=2, widen_value=1.0)
    np.testing.assert_array_equal(target_event_frames(wide), [10, 50])  # run centres
    sharp = render_targets(np.array([10, 50]), 80, widen_frames=1, widen_value=0.5)
    np.testing.assert_array_equal(target_event_frames(sharp), [10, 50])


def test_events_outside_the_column_are_dropped_and_an_empty_column_has_none():
    column = render_targets(np.array([-3, 2, 12]), 10, widen_frames=1, widen_value=0.5)
    assert column[[1, 2, 3]].tolist() == [0.5, 1.0, 0.5] and column[0] == 0.0 and column[9] == 0.0
    assert target_event_frames(column).tolist() == [2]
    assert target_event_frames(np.zeros(5)).size == 0


def test_widening_from_outside_reaches_into_the_column_without_an_event():
    events = np.array([-1, 4, 10])  # a beat one frame before the start and one just past the end
    kept = render_targets(events, 10, widen_frames=1, widen_value=0.5, widen_from_outside=True)
    dropped = render_targets(events, 10, widen_frames=1, widen_value=0.5)
    assert kept[[0, 9]].tolist() == [0.5, 0.5] and dropped[[0, 9]].tolist() == [0.0, 0.0]
    np.testing.assert_array_equal(kept[1:9], dropped[1:9])
    assert target_event_frames(kept).tolist() == [4]
