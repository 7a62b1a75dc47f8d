"""dataset_index.csv: rows with paths resolved against the CSV's folder, and errors that name the file."""

import pytest

from beatgrid.data.dataset_index import DatasetIndexRow, read_dataset_index


def test_rows_resolve_paths_against_the_csv_folder_and_keep_absolute_ones(tmp_path):
    csv = tmp_path / "shared" / "dataset_index.csv"
    csv.parent.mkdir()
    csv.write_text(
        "dataset,audio_path,beats_path,has_downbeats\n"
        "gtzan, audio/a.wav ,ann/a.beats,True\n"
        f",/abs/b.flac,{tmp_path}/b.labels.json,\n"
        "simac,,ann/c.beats,False\n"
    )
    rows = read_dataset_index(csv)
    root = csv.parent.as_posix()
    assert rows == [
        DatasetIndexRow(2, "gtzan", f"{root}/audio/a.wav", f"{root}/ann/a.beats", "True"),
        DatasetIndexRow(3, "", "/abs/b.flac", f"{tmp_path.as_posix()}/b.labels.json", ""),
        DatasetIndexRow(4, "simac", "", f"{root}/ann/c.beats", "False"),
    ]


def test_has_downbeats_is_optional(tmp_path):
    csv = tmp_path / "index.csv"
    csv.write_text("dataset,audio_path,beats_path\nx,a.wav,a.beats\n")
    assert [row.has_downbeats for row in read_dataset_index(csv)] == [""]


def test_group_is_optional_and_stripped(tmp_path):
    csv = tmp_path / "index.csv"
    csv.write_text("dataset,audio_path,beats_path,group\nx,a.wav,a.beats, piece1 \nx,b.wav,b.beats,\n")
    assert [row.group for row in read_dataset_index(csv)] == ["piece1", ""]
    csv.write_text("dataset,audio_path,beats_path\nx,a.wav,a.beats\n")
    assert [row.group for row in read_dataset_index(csv)] == [""]


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.csv.*does not exist"):
        read_dataset_index(tmp_path / "none.csv")
    (tmp_path / "columns.csv").write_text("dataset,audio\nx,a.wav\n")
    with pytest.raises(ValueError, match=r"columns.csv lacks column\(s\) audio_path, beats_path"):
        read_dataset_index(tmp_path / "columns.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="cannot parse .*empty.csv"):
        read_dataset_index(tmp_path / "empty.csv")


@pytest.mark.parametrize("path", ["a/b", "./a", "a/./b", "a//b", "/a/b/", "a/../b", "/", "//a", "///a", "..", ".", "a/b/."])
def test_paths_are_normalised_as_pathlib_does(path):
    from pathlib import PurePosixPath

    from beatgrid.data.dataset_index import _posix_path

    assert _posix_path(path) == PurePosixPath(path).as_posix()
