"""beatgrid.predictions: the per-track prediction files, written and read back."""

import json

import numpy as np
import pytest

from beatgrid.predictions import read_prediction_beats, read_prediction_grid, write_prediction_files


def test_written_files_read_back(tmp_path):
    label = {"fileName": "a.wav", "bpm": 120.0, "downbeatOffset": 0.25}
    paths = write_prediction_files(tmp_path / "out", "a", np.array([0.25, 0.75, 1.25]), np.array([1, 2, 0]), label)
    assert [p.name for p in paths] == ["a.beats", "a.json"]
    times, positions = read_prediction_beats(paths[0])
    np.testing.assert_allclose(times, [0.25, 0.75, 1.25])
    np.testing.assert_array_equal(positions, [1, 2, 0])
    assert read_prediction_grid(paths[1]) == label
    write_prediction_files(tmp_path / "out", "b", np.array([0.5]), None, {"bpm": None})
    assert read_prediction_beats(tmp_path / "out" / "b.beats")[1] is None  # no position column
    assert read_prediction_grid(tmp_path / "out" / "b.json") == {"bpm": None}


def test_read_prediction_beats_formats(tmp_path):
    two = tmp_path / "a.beats"
    two.write_text("0.5\t1\n1.0\t2\n1.5\t3\n2.0\t4\n2.5\t1\n")
    times, positions = read_prediction_beats(two)
    np.testing.assert_allclose(times, [0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(positions, [1, 2, 3, 4, 1])

    one = tmp_path / "b.beats"
    one.write_text("0.5\n1.0\n")
    assert read_prediction_beats(one)[1] is None

    zeros = tmp_path / "c.beats"
    zeros.write_text("0.5 0\n1.0 0\n")
    assert read_prediction_beats(zeros)[1] is None

    empty = tmp_path / "d.beats"
    empty.write_text("")
    times, positions = read_prediction_beats(empty)
    assert times.size == 0 and positions is None


@pytest.mark.parametrize(
    ("text", "match"),
    [("0.5\t1\n1.0\n", "prediction unparsable at line 2: 1 columns"),
     ("0.5\tx\n", "prediction unparsable at line 1: .* is not numeric"),
     ("1.0\n0.5\n", "ascending"), ("0.5\t1.5\n", "integer")],
)
def test_read_prediction_beats_rejects_bad_files_naming_them(tmp_path, text, match):
    path = tmp_path / "bad.beats"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        read_prediction_beats(path)
    assert "bad.beats" in str(info.value)


def test_read_prediction_grid(tmp_path):
    assert read_prediction_grid(tmp_path / "missing.json") is None
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"bpm": 128.0, "downbeatOffset": 0.1}))
    assert read_prediction_grid(path)["bpm"] == 128.0
    path.write_text(json.dumps({"bpm": -1}))
    with pytest.raises(ValueError, match="g.json"):
        read_prediction_grid(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="g.json"):
        read_prediction_grid(path)
