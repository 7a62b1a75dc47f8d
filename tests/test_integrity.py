"""beatgrid.integrity and `beatgrid check`: corrupt stores and models are found, named and removed."""

from pathlib import Path

import numpy as np
import pytest
import torch

from beatgrid.cli import main
from beatgrid.data.store import CorruptFileError, atomic_h5, read_store, write_track
from beatgrid.errors import ModelFileError
from beatgrid.integrity import array_checksum, check_file, check_results
from beatgrid.models import build_model, load_model, save_model

torch.set_num_threads(1)


def _store(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with atomic_h5(path, {"fps": 50.0}) as h5:
        for i in range(3):
            write_track(h5, f"t{i}", {"mel": rng.random((200, 16)).astype(np.float16)})
    return path


def _model(path: Path) -> Path:
    torch.manual_seed(0)
    save_model(path, build_model("tcn", {"channels": 4, "n_layers": 2}))
    return path


def _results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    _store(root / "features" / "mels" / "000.h5")
    _store(root / "features" / "mels" / "001.h5", seed=1)
    _model(root / "models" / "ltm" / "model.pt")
    return root


def _flip_a_data_byte(path: Path, track_id: str = "t1") -> None:
    import h5py

    with h5py.File(path, "r") as h5:
        offset = h5[f"tracks/{track_id}/mel"].id.get_offset()  # contiguous, uncompressed
    data = bytearray(path.read_bytes())
    data[offset + 101] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_checksums_are_written_at_creation_and_verified(tmp_path):
    store, model = _store(tmp_path / "a.h5"), _model(tmp_path / "model.pt")
    assert check_file(store).status == "ok" and check_file(model).status == "ok"
    _flip_a_data_byte(store)
    verdict = check_file(store)
    assert verdict.status == "corrupt" and "/tracks/t1/mel" in verdict.problem
    read_store(store, "mel")  # a flipped bit reads without error: only the checksum finds it


def test_truncated_files_are_corrupt_and_their_readers_say_what_to_run(tmp_path):
    root = _results(tmp_path)
    store, model = root / "features/mels/000.h5", root / "models/ltm/model.pt"
    _truncate(store)
    _truncate(model)
    assert check_file(store).status == "corrupt" and check_file(model).status == "corrupt"
    with pytest.raises(CorruptFileError) as raised:
        read_store(store, "mel")
    message = str(raised.value)
    assert "\n" not in message and str(store) in message and f"beatgrid check --repair {root}" in message
    with pytest.raises(ModelFileError) as raised:
        load_model(model)
    message = str(raised.value)
    assert "\n" not in message and str(model) in message and f"beatgrid check --repair {root}" in message


def test_a_model_whose_weights_do_not_match_their_checksum_is_refused(tmp_path):
    model = _model(tmp_path / "model.pt")
    payload = torch.load(model, weights_only=True)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = payload["state_dict"][name] + 1
    torch.save(payload, model)
    assert check_file(model).status == "corrupt"
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(model)


def test_repair_removes_only_corrupt_and_leftover_files(tmp_path):
    root = _results(tmp_path)
    bad, good = root / "features/mels/001.h5", root / "features/mels/000.h5"
    _truncate(bad)
    leftover = root / "features/mels/002.h5.tmp-4242"  # a killed job's temporary file
    leftover.write_bytes(b"half")
    before = {p: p.stat().st_mtime_ns for p in (good, root / "models/ltm/model.pt")}
    verdicts = {c.path: c.status for c in check_results(root)}
    assert verdicts == {good: "ok", bad: "corrupt", leftover: "leftover", root / "models/ltm/model.pt": "ok"}
    assert bad.exists()  # checking alone changes nothing
    verdicts = {c.path: c.status for c in check_results(root, repair=True)}
    assert verdicts[bad] == verdicts[leftover] == "removed"
    assert not bad.exists() and not leftover.exists()
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_repair_refuses_while_snakemake_holds_its_lock(tmp_path):
    root = _results(tmp_path)
    _truncate(root / "features/mels/001.h5")
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("")
    with pytest.raises(BlockingIOError, match="unlock"):
        check_results(root, repair=True)
    assert (root / "features/mels/001.h5").exists()


def test_check_command(tmp_path, capsys):
    root = _results(tmp_path)
    assert main(["check", str(root)]) == 0
    _truncate(root / "models/ltm/model.pt")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "corrupt" in out and "model.pt" in out and "--repair" in out
    assert main(["check", "--repair", str(root)]) == 0
    assert not (root / "models/ltm/model.pt").exists()
    assert main(["check", str(root)]) == 0


def test_array_checksum_covers_dtype_shape_and_bytes():
    a = np.arange(12, dtype=np.float32)
    assert array_checksum(a) == array_checksum(a.copy())
    assert array_checksum(torch.from_numpy(a)) == array_checksum(torch.from_numpy(a.copy()))
    assert array_checksum(a) != array_checksum(a.reshape(3, 4))
    assert array_checksum(a) != array_checksum(a.view(np.int32))
    b = a.copy()
    b[5] = np.nextafter(b[5], np.float32(100))
    assert array_checksum(a) != array_checksum(b)
