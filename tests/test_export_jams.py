"""beatgrid.export.jams: beat and tempo annotations that the jams package loads and validates."""

from __future__ import annotations

import numpy as np
import pytest

from beatgrid.analysis import decode
from beatgrid.export.jams import write_jams
from tests.synthetic_activations import constant_tempo_beats, make_track

jams = pytest.importorskip("jams")
FPS = 50.0


# jams (0.3) validates with a jsonschema call that jsonschema >= 4.x deprecates: theirs, not ours.
JAMS_VALIDATION_WARNING = "ignore:Passing a schema to Validator.iter_errors:DeprecationWarning"


@pytest.mark.filterwarnings(JAMS_VALIDATION_WARNING)
def test_jams_validates_and_holds_the_beats_and_tempo(tmp_path):
    beats, positions = constant_tempo_beats(110.0, 20.0, offset_s=0.3, beats_per_bar=4)
    track = make_track(beats, positions, 20.0, FPS, rng=0)
    analysis = decode(np.stack([track.beat_activation, track.downbeat_activation], axis=1), FPS, 20.0, "crnn_dbn")
    path = write_jams(tmp_path / "song.wav.jams", analysis, title="song.wav")

    document = jams.load(str(path), validate=True)  # raises on a schema violation
    assert document.file_metadata.title == "song.wav"
    assert document.file_metadata.duration == pytest.approx(20.0)
    (beat,) = document.search(namespace="beat")
    times = np.array([obs.time for obs in beat.data])
    values = [obs.value for obs in beat.data]
    np.testing.assert_allclose(times, analysis.beats, atol=1e-6)
    assert values == [int(p) if p > 0 else None for p in analysis.beat_positions]
    (tempo,) = document.search(namespace="tempo")
    (observation,) = tempo.data
    assert observation.value == pytest.approx(analysis.beatgrid.bpm, abs=1e-4)
    assert observation.confidence == pytest.approx(analysis.beatgrid.confidence, abs=1e-4)


@pytest.mark.filterwarnings(JAMS_VALIDATION_WARNING)
def test_jams_without_tempo_has_beats_only_and_the_reason(tmp_path):
    analysis = decode(np.zeros((500, 2), np.float32), FPS, silent=True)
    document = jams.load(str(write_jams(tmp_path / "quiet.jams", analysis)), validate=True)
    assert len(document.search(namespace="tempo")) == 0
    assert len(document.search(namespace="beat")[0].data) == 0
    assert "silent" in document.sandbox.reason


def test_a_written_jams_reads_back_as_an_annotation(tmp_path):
    """What beatgrid exports, beatgrid (and a training set built from it) reads: same beats and bars."""
    from beatgrid.annotations import read_annotation

    beats, positions = constant_tempo_beats(128.0, 12.0, offset_s=0.2, beats_per_bar=3)
    track = make_track(beats, positions, 12.0, FPS, rng=1)
    analysis = decode(np.stack([track.beat_activation, track.downbeat_activation], axis=1), FPS, 12.0, "crnn_dbn")
    annotation = read_annotation(write_jams(tmp_path / "song.jams", analysis), "jams")
    np.testing.assert_allclose(annotation.beat_times, analysis.beats, atol=1e-6)
    np.testing.assert_array_equal(annotation.beat_positions, analysis.beat_positions)
    assert annotation.has_downbeats
