"""beatgrid.annotations: .beats, label JSON and JAMS readers/writers, grid expansion, validation."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from beatgrid.annotations import (
    END_TOLERANCE_S,
    Annotation,
    AnnotationError,
    LabelGrid,
    annotation_format_of,
    label_grid_to_annotation,
    read_annotation,
    read_beats_file,
    read_jams_beats,
    read_label_json,
    validate_annotation,
    write_beats_file,
    write_label_json,
)

FIXTURES = Path(__file__).parent / "data" / "index"


def _beats(tmp_path, text: str | bytes, name: str = "track.beats") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# --------------------------------------------------------------------------- .beats reading


def test_reads_beat_this_file_with_bom_crlf_and_float_positions():
    ann = read_beats_file(FIXTURES / "gtzan_crlf_bom_float_positions.beats")
    np.testing.assert_allclose(ann.beat_times, [0.217, 0.695, 1.173, 1.651, 2.129])
    np.testing.assert_array_equal(ann.beat_positions, [3, 4, 1, 2, 3])
    assert ann.beat_positions.dtype == np.int64
    assert ann.has_downbeats
    np.testing.assert_allclose(ann.downbeat_times, [1.173])


def test_reads_time_only_file_with_comments_and_blank_lines():
    ann = read_beats_file(FIXTURES / "beats_only_with_comments.beats")
    np.testing.assert_allclose(ann.beat_times, [0.24, 1.047, 1.86, 2.625])
    assert ann.beat_positions is None
    assert not ann.has_downbeats
    assert ann.downbeat_times.size == 0
    assert ann.beats_per_bar is None


def test_reads_space_separated_integer_positions(tmp_path):
    path = _beats(tmp_path, "0.5 1\n1.0   2\n1.5 3\n2.0 1\n2.5 2\n3.0 3\n3.5 1\n")
    ann = read_beats_file(path)
    np.testing.assert_allclose(ann.downbeat_times, [0.5, 2.0, 3.5])
    assert ann.beats_per_bar == 3
    assert ann.median_bpm == pytest.approx(120.0)


def test_reads_harmonix_three_columns_with_bar_numbers(tmp_path):
    """Harmonix's beats_and_downbeats/*.txt: time, position in the bar, bar number (tab-separated)."""
    text = "0.5\t3\t0\n1.0\t1\t1\n1.5\t2\t1\n2.0\t3\t1\n2.5\t1\t2\n"
    ann = read_beats_file(_beats(tmp_path, text, "0001_song.txt"))
    np.testing.assert_allclose(ann.beat_times, [0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(ann.beat_positions, [3, 1, 2, 3, 1])
    assert ann.beats_per_bar == 3


def test_beats_per_bar_is_the_most_common_bar_length():
    # a 2-beat pickup, then 4/4 bars, one 2/4 bar in the middle
    positions = [3, 4, 1, 2, 3, 4, 1, 2, 1, 2, 3, 4, 1, 2, 3, 4, 1]
    ann = Annotation(np.arange(len(positions)) * 0.5, positions)
    assert ann.beats_per_bar == 4


@pytest.mark.parametrize("positions", [None, [1, 2, 3]])
def test_write_read_round_trip(tmp_path, positions):
    times = np.array([0.1234567, 0.61, 1.2])
    path = tmp_path / "out.beats"
    write_beats_file(path, times, positions)
    ann = read_beats_file(path)
    np.testing.assert_allclose(ann.beat_times, times, atol=5e-7)
    if positions is None:
        assert ann.beat_positions is None
    else:
        np.testing.assert_array_equal(ann.beat_positions, positions)
        assert path.read_text().splitlines()[0] == "0.123457\t1"


def test_write_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="positions"):
        write_beats_file(tmp_path / "x.beats", [0.1, 0.2], [1])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("# only a comment\n\n   \n", "empty"),
        ("0.5 1\nhello world\n", "unparsable at line 2"),
        ("0.5\t1\n1.0\t2\t7\n", "unparsable at line 2"),
        ("0.5 1 2 9\n", "unparsable at line 1: 4 columns"),
        ("0.5 1 2\n1.0 2 1\n", "bar number '1' is not a whole number at least"),
        ("0.5 1 1.5\n", "bar number '1.5'"),
        ("0.5 1\n1.0\n", "unparsable at line 2"),
        (b"\xff\xfe\x00\x01\x80binary", "not a text file"),
        ("0.5 1\nnan 2\n", "non-finite"),
        ("0.5 1\ninf 2\n", "non-finite"),
        ("-0.25 4\n0.5 1\n", "negative time"),
        ("0.5 1\n1.0 2\n1.0 3\n", "duplicate at line 3"),
        ("0.5 1\n1.0 1.5\n", "not a whole number"),
        ("0.5 0\n1.0 1\n", "below 1"),
    ],
)
def test_malformed_beats_files_raise_with_file_and_problem(tmp_path, content, message):
    path = _beats(tmp_path, content)
    with pytest.raises(AnnotationError, match=message) as excinfo:
        read_beats_file(path)
    assert str(path) in str(excinfo.value)
    assert excinfo.value.path == str(path)


def test_unsorted_file_names_the_offending_line(tmp_path):
    lines = [f"{0.5 * i:.3f}\t{i % 4 + 1}" for i in range(1, 15)]
    lines[10] = "1.000\t3"  # line 12 after one header comment
    path = _beats(tmp_path, "# header\n" + "\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"unsorted at line 12: 1\.000 s follows 5\.000 s"):
        read_beats_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="missing"):
        read_beats_file(tmp_path / "nope.beats")


def test_annotation_error_survives_pickling():
    error = pickle.loads(pickle.dumps(AnnotationError("a.beats", "annotation is empty (no beats)")))
    assert str(error) == "a.beats: annotation is empty (no beats)"


# --------------------------------------------------------------------------- validation


def test_beats_past_the_end_are_rejected_beyond_the_tolerance():
    ann = Annotation(np.array([1.0, 15.0, 31.2]), None)
    with pytest.raises(AnnotationError) as excinfo:
        validate_annotation(ann, 30.0, "x.beats")
    assert excinfo.value.problem == "beat at 31.20 s is past the end of the audio (30.00 s)"

    inside = Annotation(np.array([1.0, 30.0 + END_TOLERANCE_S * 0.9]), None)
    validate_annotation(inside, 30.0, "x.beats")  # within tolerance: accepted
    validate_annotation(ann, None, "x.beats")  # no duration: times only


@pytest.mark.parametrize(
    "times, positions, message",
    [
        ([], None, "empty"),
        ([0.5, 0.4], None, "unsorted at beat 2"),
        ([-1.0, 0.4], None, "negative"),
        ([0.5, np.nan], None, "non-finite"),
        ([0.5, 1.0], [1, 0], "below 1"),
    ],
)
def test_validate_checks_annotations_built_in_memory(times, positions, message):
    with pytest.raises(AnnotationError, match=message):
        validate_annotation(Annotation(np.array(times, dtype=float), positions), 10.0, "mem")


def test_annotation_rejects_inconsistent_arrays():
    with pytest.raises(ValueError):
        Annotation(np.array([0.1, 0.2]), np.array([1]))
    with pytest.raises(ValueError):
        Annotation(np.array([0.1, 0.2]), np.array([1, 1.5]))


# --------------------------------------------------------------------------- label JSON


def test_reads_seed_label_json_with_defaults():
    grid = read_label_json(FIXTURES / "seed001_minimal.labels.json")
    assert grid == LabelGrid(
        bpm=128.37, duration_s=30.0, downbeat_offset_s=0.42, file_name="song.mp3", beats_per_bar=4
    )


def test_label_json_round_trip(tmp_path):
    grid = LabelGrid(bpm=93.27, duration_s=61.5, downbeat_offset_s=1.234, file_name="a b.flac",
                     beats_per_bar=3, confidence=0.75)  # fmt: skip
    path = tmp_path / "a.labels.json"
    write_label_json(path, grid)
    assert read_label_json(path) == grid
    assert set(json.loads(path.read_text())) == {
        "fileName", "bpm", "downbeatOffset", "duration", "beatsPerBar", "confidence"
    }  # fmt: skip


@pytest.mark.parametrize(
    "data, message",
    [
        ({"duration": 30.0}, "no 'bpm'"),
        ({"bpm": None}, "no 'bpm'"),
        ({"bpm": 0}, "not positive"),
        ({"bpm": -120}, "not positive"),
        ({"bpm": "abc"}, "not a number"),
        ({"bpm": "128"}, "not a number"),
        ({"bpm": True}, "not a number"),
        ({"bpm": 1e6}, "implausible"),
        ({"bpm": 120, "duration": -3}, "duration -3 s is not positive"),
        ({"bpm": 120, "downbeatOffset": "x"}, "'downbeatOffset' is not a number"),
        ({"bpm": 120, "beatsPerBar": 2.5}, "beatsPerBar"),
        ({"bpm": 120, "fileName": 7}, "fileName"),
        ([120], "not an object"),
    ],
)
def test_bad_label_json_raises(tmp_path, data, message):
    path = tmp_path / "bad.labels.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=message) as excinfo:
        read_label_json(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("text, message", [("", "empty"), ('{"bpm": 120,', "unparsable at line 1")])
def test_label_json_empty_or_invalid(tmp_path, text, message):
    path = tmp_path / "bad.labels.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        read_label_json(path)


def test_grid_extends_backwards_from_the_downbeat_offset():
    grid = LabelGrid(bpm=120.0, duration_s=4.0, downbeat_offset_s=1.0)
    ann = label_grid_to_annotation(grid)
    np.testing.assert_allclose(ann.beat_times, np.arange(8) * 0.5)
    np.testing.assert_array_equal(ann.beat_positions, [3, 4, 1, 2, 3, 4, 1, 2])
    np.testing.assert_allclose(ann.downbeat_times, [1.0, 3.0])


def test_grid_has_no_drift_at_fractional_tempo_and_stops_before_the_duration():
    grid = LabelGrid(bpm=128.37, duration_s=600.0, downbeat_offset_s=0.731, beats_per_bar=3)
    ann = label_grid_to_annotation(grid, duration_s=300.0)  # the audio's length wins
    period = 60.0 / 128.37
    assert ann.beat_times[0] >= 0 and ann.beat_times[0] < period
    assert ann.beat_times[-1] < 300.0 <= ann.beat_times[-1] + period
    k = np.round((ann.beat_times - 0.731) / period)
    np.testing.assert_allclose(ann.beat_times, 0.731 + k * period, atol=1e-9)
    np.testing.assert_allclose(np.diff(ann.beat_times), period, atol=1e-9)
    assert np.all(ann.beat_positions[k % 3 == 0] == 1)
    assert ann.beats_per_bar == 3


def test_grid_keeps_a_beat_at_zero_and_handles_negative_offsets():
    ann = label_grid_to_annotation(LabelGrid(bpm=60.0, duration_s=3.0, downbeat_offset_s=2.0))
    np.testing.assert_allclose(ann.beat_times, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(ann.beat_positions, [3, 4, 1])
    ann = label_grid_to_annotation(LabelGrid(bpm=60.0, duration_s=2.5, downbeat_offset_s=-0.5))
    np.testing.assert_allclose(ann.beat_times, [0.5, 1.5])
    np.testing.assert_array_equal(ann.beat_positions, [2, 3])


def test_grid_without_any_duration_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="duration"):
        label_grid_to_annotation(LabelGrid(bpm=120.0, duration_s=None))
    path = tmp_path / "nodur.labels.json"
    path.write_text('{"bpm": 120}')
    with pytest.raises(AnnotationError, match="duration"):
        read_annotation(path, "label_json")
    assert read_annotation(path, "label_json", duration_s=2.0).beat_times.size == 4


def test_read_annotation_dispatches_on_format(tmp_path):
    beats = read_annotation(FIXTURES / "beats_only_with_comments.beats", "beats")
    assert beats.beat_times.size == 4
    with pytest.raises(ValueError, match="annotation_format"):
        read_annotation(FIXTURES / "beats_only_with_comments.beats", "midi")


# --------------------------------------------------------------------------- JAMS


def _jams(tmp_path, annotations, name: str = "track.jams") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"annotations": annotations, "file_metadata": {}, "sandbox": {}}))
    return path


def test_reads_the_first_beat_annotation_of_a_jams_file():
    """A file as jams writes it (validated by jams.load): a tempo annotation, then two annotators' beats."""
    ann = read_annotation(FIXTURES / "waltz_two_annotators.jams", "jams")
    np.testing.assert_allclose(ann.beat_times, [0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(ann.beat_positions, [3, 1, 2, 3, 1])
    assert ann.beats_per_bar == 3
    np.testing.assert_allclose(ann.downbeat_times, [1.0, 2.5])


def test_jams_dense_data_beat_position_namespace_and_beats_without_bars(tmp_path):
    dense = _jams(tmp_path, [{"namespace": "beat", "data": {"time": [0.5, 1.0, 1.5], "duration": [0, 0, 0],
                                                             "value": [1, 2, 1], "confidence": [None] * 3}}])
    np.testing.assert_array_equal(read_jams_beats(dense).beat_positions, [1, 2, 1])
    position = _jams(tmp_path, [{"namespace": "beat_position", "data": [
        {"time": t, "duration": 0, "value": {"position": p, "measure": 1, "num_beats": 2, "beat_units": 4}}
        for t, p in [(0.2, 1), (0.7, 2), (1.2, 1)]]}], "position.jams")
    np.testing.assert_array_equal(read_jams_beats(position).beat_positions, [1, 2, 1])
    unnumbered = _jams(tmp_path, [{"namespace": "beat", "data": [
        {"time": t, "duration": 0, "value": None} for t in (0.5, 1.0)]}], "plain.jams")
    ann = read_jams_beats(unnumbered)
    assert ann.beat_positions is None and not ann.has_downbeats and ann.beat_times.size == 2


@pytest.mark.parametrize(
    "annotations, message",
    [
        ([{"namespace": "chord", "data": []}, {"namespace": "tempo", "data": []}],
         "no beat annotation .* it has chord, tempo"),
        ([{"namespace": "beat", "data": [{"time": 0.5, "value": 1}, {"time": 1.0, "value": None}]}],
         r"beat 2 \(1.000 s\) has no bar position"),
        ([{"namespace": "beat", "data": [{"time": 0.5, "value": "one"}]}], "not a number: 'one'"),
        ([{"namespace": "beat", "data": [{"time": 0.5, "value": 0}]}], "bar position below 1"),
        ([{"namespace": "beat", "data": [{"time": "0.5", "value": 1}]}], "time is not a number"),
        ([{"namespace": "beat", "data": [{"time": 0.5, "value": 1}, {"time": 0.5, "value": 2}]}], "duplicate"),
        ([{"namespace": "beat", "data": []}], "empty"),
        ([{"namespace": "beat", "data": "beats"}], "neither a list"),
    ],
)
def test_bad_jams_raise_with_file_and_problem(tmp_path, annotations, message):
    path = _jams(tmp_path, annotations)
    with pytest.raises(AnnotationError, match=message) as raised:
        read_jams_beats(path)
    assert raised.value.path == str(path) and str(raised.value).startswith(str(path))


def test_jams_that_is_not_json_or_has_no_annotations(tmp_path):
    broken = tmp_path / "broken.jams"
    broken.write_text('{"annotations": [')
    with pytest.raises(AnnotationError, match="JAMS unparsable"):
        read_jams_beats(broken)
    empty = tmp_path / "empty.jams"
    empty.write_text("{}")
    with pytest.raises(AnnotationError, match="no 'annotations' list"):
        read_jams_beats(empty)
    with pytest.raises(AnnotationError, match="missing"):
        read_jams_beats(tmp_path / "absent.jams")


@pytest.mark.parametrize("name, expected", [("a.beats", "beats"), ("b.JAMS", "jams"), ("c.labels.json", "label_json"),
                                            ("d.txt", "beats"), ("e.lab", "beats")])
def test_annotation_format_of_a_file_name(name, expected):
    assert annotation_format_of(name) == expected
