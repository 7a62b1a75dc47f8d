"""Rekordbox XML: a DJ collection with one constant beatgrid per track.

Rekordbox imports this file (Preferences > Advanced > rekordbox xml) and other DJ software
converts it; it is the common exchange format for beatgrids. The shape::

    <DJ_PLAYLISTS Version="1.0.0">
      <PRODUCT Name="beatgrid" Version="..." Company="beatgrid"/>
      <COLLECTION Entries="N">
        <TRACK TrackID="1" Name="song.mp3" Location="file://localhost/music/song.mp3"
               TotalTime="215" AverageBpm="123.45">
          <TEMPO Inizio="0.312" Bpm="123.45" Metro="4/4" Battito="1"/>
        </TRACK>
      </COLLECTION>
      <PLAYLISTS><NODE Type="0" Name="ROOT" Count="1">
        <NODE Name="beatgrid" Type="1" KeyType="0" Entries="N"><TRACK Key="1"/></NODE>
      </NODE></PLAYLISTS>
    </DJ_PLAYLISTS>

``TEMPO`` is one beatgrid marker: ``Inizio`` the time (s) of a beat, ``Bpm`` the tempo from
there on, ``Metro`` the meter and ``Battito`` that beat's number in its bar (1 = downbeat).
A track without a tempo (silence, no steady beat) has no ``TEMPO``.
"""

from __future__ import annotations

import os
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from ..decoding.grid import Beatgrid
from ..io import atomic_write

__all__ = ["PLAYLIST_NAME", "location_uri", "read_rekordbox_tracks", "track_element", "write_rekordbox_xml"]

#: The playlist that holds every track of the file.
PLAYLIST_NAME = "beatgrid"


def location_uri(path: str | os.PathLike) -> str:
    """``file://localhost/<absolute path, percent-encoded>``, as Rekordbox writes ``Location``."""
    absolute = Path(os.path.abspath(path)).as_posix()
    if not absolute.startswith("/"):  # C:/Music/... on Windows
        absolute = "/" + absolute
    return "file://localhost" + urllib.parse.quote(absolute, safe="/:")


def track_element(audio_path: str | os.PathLike, duration_s: float, beatgrid: Beatgrid | None) -> ET.Element:
    """One ``TRACK`` (without ``TrackID``, which :func:`write_rekordbox_xml` numbers)."""
    attrs = {"Name": Path(audio_path).name, "Location": location_uri(audio_path),
             "TotalTime": str(int(round(duration_s)))}
    element = ET.Element("TRACK", attrs)
    if beatgrid is not None:
        element.set("AverageBpm", f"{beatgrid.bpm:.2f}")
        first_beat = beatgrid.offset_s
        position = int(beatgrid.beat_positions(first_beat + beatgrid.period_s / 2)[0])  # that beat's number
        ET.SubElement(element, "TEMPO", {
            "Inizio": f"{first_beat:.3f}",
            "Bpm": f"{beatgrid.bpm:.2f}",
            "Metro": f"{beatgrid.beats_per_bar}/4",
            "Battito": str(position),
        })
    return element


def read_rekordbox_tracks(path: str | os.PathLike) -> dict[str, ET.Element]:
    """The ``TRACK`` elements of a collection file by ``Location``; empty when the file is absent.

    Raises:
        ValueError: the file is not a Rekordbox XML collection.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not readable as XML ({exc})") from exc
    collection = root.find("COLLECTION")
    if root.tag != "DJ_PLAYLISTS" or collection is None:
        raise ValueError(f"{path}: not a Rekordbox collection (no DJ_PLAYLISTS/COLLECTION)")
    return {track.get("Location", ""): track for track in collection.findall("TRACK")}


def write_rekordbox_xml(path: str | os.PathLike, tracks: Iterable[ET.Element]) -> Path:
    """Write ``tracks`` (from :func:`track_element` or :func:`read_rekordbox_tracks`) as one
    collection and one playlist, numbering them ``TrackID`` 1..N in order; atomic."""
    from .. import __version__

    root = ET.Element("DJ_PLAYLISTS", {"Version": "1.0.0"})
    ET.SubElement(root, "PRODUCT", {"Name": "beatgrid", "Version": __version__, "Company": "beatgrid"})
    tracks = list(tracks)
    collection = ET.SubElement(root, "COLLECTION", {"Entries": str(len(tracks))})
    playlists = ET.SubElement(root, "PLAYLISTS")
    node = ET.SubElement(playlists, "NODE", {"Type": "0", "Name": "ROOT", "Count": "1"})
    playlist = ET.SubElement(node, "NODE", {"Name": PLAYLIST_NAME, "Type": "1", "KeyType": "0",
                                            "Entries": str(len(tracks))})
    for track_id, track in enumerate(tracks, start=1):
        track = ET.fromstring(ET.tostring(track))  # a copy: the caller's element keeps its ID
        track.attrib = {"TrackID": str(track_id), **{k: v for k, v in track.attrib.items() if k != "TrackID"}}
        collection.append(track)
        ET.SubElement(playlist, "TRACK", {"Key": str(track_id)})
    ET.indent(root)
    tree = ET.ElementTree(root)
    return atomic_write(path, lambda tmp: tree.write(tmp, encoding="UTF-8", xml_declaration=True))
