"""beatgrid.export.rekordbox: the collection file, read back by pyrekordbox as DJ software would."""

from __future__ import annotations

import pytest

from beatgrid.decoding.grid import Beatgrid
from beatgrid.export.rekordbox import location_uri, read_rekordbox_tracks, track_element, write_rekordbox_xml

pyrekordbox = pytest.importorskip("pyrekordbox")


def test_pyrekordbox_reads_bpm_first_beat_and_meter(tmp_path):
    waltz = Beatgrid(bpm=92.37, offset_s=0.412, downbeat_offset_s=0.412 + 60 / 92.37, beats_per_bar=3, confidence=0.8)
    house = Beatgrid(bpm=124.0, offset_s=0.05, downbeat_offset_s=0.05, beats_per_bar=4, confidence=0.9)
    audio = [tmp_path / "music" / "valse lente.flac", tmp_path / "music" / "house#1.mp3", tmp_path / "quiet.wav"]
    tracks = [track_element(audio[0], 181.6, waltz), track_element(audio[1], 300.2, house),
              track_element(audio[2], 10.0, None)]
    path = write_rekordbox_xml(tmp_path / "rekordbox.xml", tracks)

    xml = pyrekordbox.RekordboxXml(path)
    assert xml.num_tracks == 3
    first, second, third = (xml.get_track(i) for i in range(3))
    assert first.Location.endswith("music/valse lente.flac")  # pyrekordbox decodes the URI
    assert first.Name == "valse lente.flac" and first.TotalTime == 182
    (tempo,) = first.tempos
    assert tempo.Bpm == pytest.approx(92.37)
    assert tempo.Inizio == pytest.approx(0.412, abs=5e-4)  # the first beat, to the millisecond
    assert tempo.Metro == "3/4"
    assert tempo.Battito == 3  # the downbeat is the next beat, so this one is the bar's third
    assert second.tempos[0].Battito == 1 and second.AverageBpm == pytest.approx(124.0)
    assert third.tempos == []  # no tempo, no grid marker
    playlist = xml.get_playlist("beatgrid")
    assert [int(k) for k in playlist.get_tracks()] == [1, 2, 3]


def test_location_is_a_percent_encoded_file_uri(tmp_path):
    from urllib.parse import unquote, urlsplit

    uri = location_uri(tmp_path / "a b" / "ü#.mp3")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("file", "localhost") and " " not in uri and "#" not in uri
    assert unquote(parts.path) == str(tmp_path / "a b" / "ü#.mp3")


def test_tracks_read_back_keep_their_grid_when_rewritten(tmp_path):
    grid = Beatgrid(bpm=128.0, offset_s=0.2, downbeat_offset_s=0.2, beats_per_bar=4, confidence=1.0)
    path = write_rekordbox_xml(tmp_path / "r.xml", [track_element(tmp_path / "a.wav", 60.0, grid)])
    tracks = read_rekordbox_tracks(path)
    assert list(tracks) == [location_uri(tmp_path / "a.wav")]
    tracks[location_uri(tmp_path / "b.wav")] = track_element(tmp_path / "b.wav", 30.0, None)
    write_rekordbox_xml(path, tracks.values())
    xml = pyrekordbox.RekordboxXml(path)
    assert [t.Name for t in xml.get_tracks()] == ["a.wav", "b.wav"]
    assert xml.get_track(0).tempos[0].Bpm == pytest.approx(128.0)


def test_reading_refuses_other_xml_and_tolerates_absence(tmp_path):
    assert read_rekordbox_tracks(tmp_path / "absent.xml") == {}
    (tmp_path / "other.xml").write_text("<playlist/>")
    with pytest.raises(ValueError, match="not a Rekordbox collection"):
        read_rekordbox_tracks(tmp_path / "other.xml")
    (tmp_path / "broken.xml").write_text("<DJ_PLAYLISTS>")
    with pytest.raises(ValueError, match="not readable as XML"):
        read_rekordbox_tracks(tmp_path / "broken.xml")
