"""The Snakefile end to end on tests/configs/tiny.yaml, and the rerun promises of the workflow.

One complete tiny run (built once per session, also under `pytest -n`) is shared by the
checks of its files and the dry-run checks of what a changed setting re-runs. It is
read-only: each test that runs Snakemake, even a dry run, works on its own copy.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from tests.session_cache import build_once

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "snakemake",
        "-s", str(REPO / "Snakefile"),
        "-d", str(workdir),
        "--configfile", str(configfile or workdir / "config.yaml"),
        "--cores", "2",
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> number of jobs that `snakemake -n` plans (from its job stats table)."""
    out = snakemake(workdir, "-n", *args)
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
    return dst


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The finished tiny run, built once per session (shared by xdist workers); read-only."""

    def build(workdir: Path) -> None:
        write_config(workdir, yaml.safe_load(TINY.read_text()))
        # --cores 8 as in the README's command, on machines with fewer CPUs too: jobs that are
        # granted 8 threads must still run no more threads than the CPUs they may use.
        snakemake(workdir, "--cores", "8")

    return build_once(tmp_path_factory, "tiny_run", build)


def tiny_config() -> dict:
    return yaml.safe_load(TINY.read_text())


# --------------------------------------------------------------------------- files of a run


def test_index_lists_every_demo_track_with_split_and_shard(tiny_run):
    tracks = pd.read_csv(tiny_run / "results/index/tracks.csv", dtype={"shard": str})
    assert list(tracks.columns[:9]) == [
        "track_id", "dataset", "audio_path", "annotation_path", "annotation_format",
        "has_downbeats", "duration_s", "split", "shard",
    ]
    assert len(tracks) == 8 and tracks["track_id"].is_unique
    assert set(tracks["split"]) == {"train", "val", "test"}
    assert (tiny_run / "results/index/rejected.csv").is_file()


def test_feature_stores_hold_every_track(tiny_run):
    tracks = pd.read_csv(tiny_run / "results/index/tracks.csv", dtype={"shard": str})
    for shard, rows in tracks.groupby("shard"):
        with h5py.File(tiny_run / f"results/features/mels/{shard}.h5", "r") as mels, h5py.File(
            tiny_run / f"results/features/targets/{shard}.h5", "r"
        ) as targets, h5py.File(tiny_run / f"results/activations/crnn/{shard}.h5", "r") as acts:
            assert mels.attrs["fps"] == pytest.approx(50.0)
            assert set(mels["tracks"]) == set(rows["track_id"])
            for track_id, row in rows.set_index("track_id").iterrows():
                mel = mels[f"tracks/{track_id}/mel"]
                assert mel.dtype == np.float16 and mel.shape[1] == 128
                assert abs(mel.shape[0] - row["duration_s"] * 50) <= 2
                assert targets[f"tracks/{track_id}/beat"].shape == (mel.shape[0],)
                activations = acts[f"tracks/{track_id}/activations"][()]
                assert activations.shape == (mel.shape[0], 2)
                assert np.all((activations >= 0) & (activations <= 1))


def test_models_predictions_and_report(tiny_run):
    for model in ("crnn", "ltm"):
        for name in ("model.pt", "history.csv", "curves.png"):
            assert (tiny_run / f"results/models/{model}/{name}").is_file()
    track_ids = pd.read_csv(tiny_run / "results/index/tracks.csv")["track_id"]
    methods = [
        "crnn_peaks@peak_threshold=0.3", "crnn_peaks@peak_threshold=0.5", "crnn_dbn", "crnn_grid", "ltm_online", "librosa",
    ]
    for method in methods:
        folder = tiny_run / "results/predictions" / method
        assert {p.stem for p in folder.glob("*.beats")} == set(track_ids), method
    grid = json.loads((tiny_run / f"results/predictions/crnn_grid/{track_ids[0]}.json").read_text())
    assert {"fileName", "bpm", "downbeatOffset", "duration", "beatsPerBar", "confidence"} <= set(grid)
    summary = pd.read_csv(tiny_run / "results/evaluation/summary.csv")
    for column in ("method", "dataset", "split", "n_tracks", "beat_f", "beat_cmlt", "beat_amlt", "downbeat_f",
                   "tempo_acc1", "tempo_acc2", "grid_phase_error_ms"):
        assert column in summary.columns
    assert "librosa" in set(summary["method"])
    html = (tiny_run / "results/report/index.html").read_text()
    assert "<table" in html and "data:image/png;base64" in html


def test_snakemake_report_builds_from_a_finished_run(tiny_run, tmp_path):
    report = tmp_path / "report.html"
    snakemake(copy_run(tiny_run, tmp_path / "run"), "--report", str(report))
    text = report.read_text(errors="replace")
    assert report.stat().st_size > 10_000
    for name in ("summary.csv", "curves.png", "index.html"):
        assert name in text, name


def test_training_jobs_run_no_more_threads_than_cpus_available(tiny_run):
    from beatgrid.threads import available_cpus

    for log in ("train_crnn.log", "train_ltm.log"):
        text = (tiny_run / "logs" / log).read_text()
        found = re.search(r"torch threads (\d+), interop (\d+)", text)
        assert found, f"{log} does not say how many torch threads it used"
        assert 1 <= int(found.group(1)) <= available_cpus() and int(found.group(2)) <= available_cpus()
        if available_cpus() < 8:  # the tiny run's --cores 8 lets jobs share CPUs: threads must not spin
            assert "OpenMP wait policy PASSIVE" in text, log


def test_provenance_records_the_run(tiny_run):
    record = yaml.safe_load((tiny_run / "results/provenance.yaml").read_text())
    assert record["config"]["crnn"]["epochs"] == tiny_config()["crnn"]["epochs"]
    assert record["packages"]["torch"] and record["git_revision"]


# --------------------------------------------------------------------------- rerun semantics


def test_complete_run_has_nothing_to_do(tiny_run, tmp_path):
    assert planned_jobs(copy_run(tiny_run, tmp_path / "run")) == {}


def test_changed_ltm_setting_reruns_only_ltm_and_downstream(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config()
    config["ltm"]["channels"] = 12
    write_config(run, config)
    jobs = planned_jobs(run)
    assert set(jobs) == {"train_ltm", "ltm_activations", "predict", "evaluate", "report", "all"}
    assert jobs["predict"] == 1  # only ltm_online reads the LTM


def test_out_of_fold_ltm_input_plans_fold_models_but_keeps_the_main_crnn(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config()
    config["ltm"].update(input_source="oof", folds=2)
    write_config(run, config)
    jobs = planned_jobs(run)
    n_shards = len(list((run / "results/features/mels").glob("*.h5")))
    assert jobs["train_crnn"] == 2  # the two fold models, not the main CRNN
    assert jobs["crnn_oof_activations"] == n_shards
    assert {"train_ltm", "ltm_activations", "predict", "evaluate", "report"} <= set(jobs)
    assert "crnn_activations" not in jobs and "mels" not in jobs


def test_changed_crnn_setting_reruns_crnn_and_downstream_only(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config()
    config["crnn"]["lr"] = 0.001
    write_config(run, config)
    jobs = planned_jobs(run)
    assert set(jobs) == {"train_crnn", "crnn_activations", "train_ltm", "ltm_activations", "predict", "evaluate", "report", "all"}
    assert jobs["train_crnn"] == 1


def test_changed_n_mels_reruns_mels_and_downstream_not_index_or_demo(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config()
    config["features"]["n_mels"] = 64
    write_config(run, config)
    jobs = planned_jobs(run)
    assert {"mels", "train_crnn", "crnn_activations", "train_ltm", "predict", "evaluate", "report"} <= set(jobs)
    assert not {"index", "demo_synth", "targets", "reference_tracker"} & set(jobs)


def test_changed_inference_setting_reruns_inference_and_evaluation_only(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config()
    config["inference"]["bpm_max"] = 180
    write_config(run, config)
    jobs = planned_jobs(run)
    assert set(jobs) == {"predict", "evaluate", "report", "all"}
    # every decoder reads bpm_max (the peak pickers as their shortest beat period)
    from beatgrid.methods import METHODS, base_method

    variants = [p for p in (run / "results/predictions").iterdir() if base_method(p.name) in METHODS]
    assert jobs["predict"] == len(variants) > 1


def test_new_track_reruns_one_shard(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config()
    config["datasets"]["demo"]["n_tracks"] += 1
    write_config(run, config)
    # A dry run cannot see past a checkpoint that must run again: demo batch + index first.
    jobs = planned_jobs(run)
    assert jobs.get("demo_synth") == 1 and jobs.get("index") == 1 and "mels" not in jobs
    snakemake(run, "results/index/tracks.csv")
    jobs = planned_jobs(run)
    assert jobs["mels"] == 1 and jobs["targets"] == 1 and jobs["crnn_activations"] >= 1
    assert {"train_crnn", "train_ltm", "evaluate"} <= set(jobs)


def test_stage_targets_work_from_a_clean_directory(tmp_path):
    """`index` and `features` run from nothing; every later stage plans through the checkpoint."""
    write_config(tmp_path, tiny_config())
    assert set(planned_jobs(tmp_path, "index")) == {"demo_synth", "index"}
    snakemake(tmp_path, "features")
    tracks = pd.read_csv(tmp_path / "results/index/tracks.csv", dtype={"shard": str})
    for shard in tracks["shard"].unique():
        for kind in ("mels", "targets"):
            assert (tmp_path / f"results/features/{kind}/{shard}.h5").is_file()
    assert not (tmp_path / "results/models").exists()
    assert not list((tmp_path / "logs").glob("train_*.log")), "the features stage ran a training job"
    expected = {
        "features": set(),
        "crnn": {"train_crnn"},
        "activations": {"train_crnn", "crnn_activations"},
        "ltm": {"train_ltm", "ltm_activations"},
        "predictions": {"predict", "reference_tracker"},
        "evaluation": {"evaluate"},
        "report": {"evaluate", "report"},
    }
    for stage, rules in expected.items():
        jobs = planned_jobs(tmp_path, stage)
        assert rules <= set(jobs), (stage, jobs)
        assert not {"index", "demo_synth", "mels", "targets"} & set(jobs), (stage, jobs)
    assert "train_ltm" not in planned_jobs(tmp_path, "activations")


def test_new_audio_under_the_same_name_reruns_its_shard_training_and_its_reference(tiny_run, tmp_path):
    """Every job follows the files it reads (inputs, or their versions as params): new audio
    content re-runs that track's feature shard, its reference shard, the training and what
    follows; nothing else."""
    run = copy_run(tiny_run, tmp_path / "run")
    tracks = pd.read_csv(run / "results/index/tracks.csv", dtype={"shard": str})
    track = tracks.iloc[0]
    audio = run / track["audio_path"]
    samples, sr = sf.read(audio, dtype="float32")
    sf.write(audio, samples[::-1] * 0.5, sr)  # same name, same length, other music
    n_shards = tracks["shard"].nunique()
    out = snakemake(run, "-n")
    jobs = planned_jobs(run)
    assert {k: jobs.get(k) for k in ("mels", "targets", "reference_shard", "reference_tracker", "train_crnn")} == {
        "mels": 1, "targets": 1, "reference_shard": 1, "reference_tracker": 1, "train_crnn": 1}
    assert jobs["crnn_activations"] == n_shards and "train_ltm" in jobs and "evaluate" in jobs
    assert not {"index", "demo_synth"} & set(jobs)
    text = out.stdout + out.stderr
    assert f"results/features/mels/{track['shard']}.h5" in text
    assert f"results/reference/librosa/{track['shard']}" in text


def test_edited_annotation_reruns_its_targets_not_its_mels(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    tracks = pd.read_csv(run / "results/index/tracks.csv", dtype={"shard": str})
    annotation = run / tracks.iloc[0]["annotation_path"]
    lines = annotation.read_text().splitlines()
    annotation.write_text("\n".join(lines[:-1]) + "\n")  # the last beat removed
    jobs = planned_jobs(run)
    assert jobs.get("targets") == 1 and "train_crnn" in jobs
    assert not {"mels", "reference_shard", "index", "demo_synth"} & set(jobs)


def test_a_no_op_rebuild_gives_identical_bytes_and_reruns_nothing_downstream(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    outputs = ["results/features/mels/000.h5", "results/models/crnn/model.pt"]
    before = {name: (run / name).read_bytes() for name in outputs}
    snakemake(run, "--force", *outputs)  # re-extract one shard, retrain (resumes its finished checkpoint)
    assert {name: (run / name).read_bytes() for name in outputs} == before
    assert planned_jobs(run) == {}  # Snakemake's checksum comparison sees nothing new


def test_corrupt_files_are_found_repaired_and_rebuilt_with_nothing_else_lost(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    model, shard = run / "results/models/crnn/model.pt", run / "results/features/mels/001.h5"
    model_bytes, shard_bytes = model.read_bytes(), shard.read_bytes()
    kept = {p: p.stat().st_mtime_ns for p in (run / "results/features").rglob("*.h5") if p != shard}
    model.write_bytes(model_bytes[: len(model_bytes) // 2])  # a copy cut short, a full disk
    shard.write_bytes(shard_bytes[: len(shard_bytes) // 2])

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "beatgrid.cli", "check", *args, "results"], cwd=run,
                              capture_output=True, text=True, timeout=600)

    checked = check()
    assert checked.returncode == 1
    assert "corrupt    results/models/crnn/model.pt" in checked.stdout
    assert "corrupt    results/features/mels/001.h5" in checked.stdout
    failed = snakemake(run, check=False)  # a job reading a damaged file says what to run, in one line
    assert failed.returncode != 0
    lines = [line for line in (failed.stdout + failed.stderr).splitlines() if "beatgrid check --repair results" in line]
    assert lines and any("results/features/mels/001.h5" in line or "model.pt" in line for line in lines)
    assert check("--repair").returncode == 0
    assert not shard.exists() and not model.exists()
    snakemake(run)
    assert shard.read_bytes() == shard_bytes and model.read_bytes() == model_bytes
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert check().returncode == 0 and planned_jobs(run) == {}
    assert "resuming from" in (run / "logs/train_crnn.log").read_text()  # not trained again


def test_unknown_config_key_stops_before_any_job(tmp_path):
    config = tiny_config()
    config["crnn"]["learning_rate"] = 0.1
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Invalid config: crnn.learning_rate: unknown key (value 0.1); allowed keys:" in output
    assert "Failed validating" not in output and len(output.splitlines()) < 8  # no schema dump
    assert not (tmp_path / "results").exists()


def test_impossible_split_stops_before_any_job(tmp_path):
    config = tiny_config()
    config["split"].update(val_fraction=0.6, test_fraction=0.5)
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert "split.val_fraction" in result.stdout + result.stderr


# --------------------------------------------------------------------------- bad input


def test_corrupt_audio_and_malformed_beats_are_rejected_and_the_rest_runs(tiny_run, tmp_path):
    """A beats_dir dataset with two bad files: both land in rejected.csv, features run for the rest."""
    data = tmp_path / "mine"
    data.mkdir()
    demo = sorted((tiny_run / "results/demo/demo").glob("batch*/*.wav"))[:3]
    for wav in demo:
        shutil.copy(wav, data / wav.name)
        shutil.copy(wav.with_suffix(".beats"), data / wav.with_suffix(".beats").name)
    (data / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    shutil.copy(demo[0].with_suffix(".beats"), data / "corrupt.beats")
    shutil.copy(demo[0], data / "malformed.wav")
    (data / "malformed.beats").write_text("0.5 1\nthree 2\n1.5 3\n")
    samples, sr = sf.read(demo[1], dtype="float32")  # one NaN: decodes, but no spectrogram
    samples[sr] = np.nan
    sf.write(data / "nan.wav", samples, sr, subtype="FLOAT")
    shutil.copy(demo[1].with_suffix(".beats"), data / "nan.beats")
    config = tiny_config()
    config["datasets"] = {"mine": {"format": "beats_dir", "audio_dir": str(data), "annotations_dir": str(data)}}
    config["split"] = {"val_fraction": 0.0, "test_fraction": 0.0, "seed": 0, "test_datasets": []}
    run = tmp_path / "run"
    run.mkdir()
    write_config(run, config)
    snakemake(run, "results/index/tracks.csv")
    rejected = pd.read_csv(run / "results/index/rejected.csv")
    reasons = dict(zip(rejected["audio_path"].map(lambda p: Path(p).name), rejected["reason"]))
    assert set(reasons) == {"corrupt.wav", "malformed.wav", "nan.wav"}
    assert reasons["nan.wav"] == "audio contains non-finite samples (NaN or inf)"
    assert "audio" in reasons["corrupt.wav"].lower()
    assert "line 2" in reasons["malformed.wav"] or "three" in reasons["malformed.wav"]
    tracks = pd.read_csv(run / "results/index/tracks.csv", dtype={"shard": str})
    assert len(tracks) == 3
    targets = [f"results/features/mels/{s}.h5" for s in sorted(tracks["shard"].unique())]
    snakemake(run, *targets)
    for target in targets:
        assert (run / target).is_file()


def test_adapt_stage_and_cli_make_the_same_model_and_reject_a_wrong_label(tiny_run, tmp_path):
    """`snakemake adapt` on label-JSON tracks: fold estimate, report and final pair; `beatgrid adapt`
    with the same settings writes the same weights; a label that contradicts its audio is rejected."""
    import json

    import torch

    from beatgrid.cli import main
    from beatgrid.data.synth import write_demo_batch

    data = tmp_path / "mine"
    write_demo_batch(data, range(7), seed=7, duration_s=12)
    labels = sorted(data.glob("*.labels.json"))
    wrong = json.loads(labels[-1].read_text())
    labels[-1].write_text(json.dumps({**wrong, "duration": wrong["duration"] + 60.0}))
    config = tiny_config()
    config["datasets"] = {**config["datasets"],
                          "mine": {"format": "label_json", "audio_dir": str(data), "labels_dir": str(data)}}
    config["adapt"] = {
        "datasets": ["mine"], "init_from": str(tiny_run / "results/models"), "replay": 0.0, "folds": 2,
        "learning_curve": [2], "learning_curve_folds": 1, "methods": ["crnn_peaks", "ltm_online"],
        "crnn": {"epochs": 1, "batch_size": 4, "crop_frames": 200, "device": "cpu"},
        "ltm": {"epochs": 1, "batch_size": 4, "crop_frames": 300, "device": "cpu"},
    }
    run = tmp_path / "run"
    run.mkdir()
    write_config(run, config)
    snakemake(run, "adapt")
    rejected = pd.read_csv(run / "results/index/rejected.csv")
    assert any(labels[-1].name in str(path) and "duration" in reason.lower()
               for path, reason in zip(rejected["annotation_path"], rejected["reason"]))
    summary = pd.read_csv(run / "results/adapt/cv/summary.csv")
    assert {"crnn_peaks (pretrained)", "crnn_peaks (adapted, 2-fold CV)", "librosa"} <= set(summary["method"])
    assert sorted(pd.read_csv(run / "results/adapt/cv/learning_curve.csv")["n_tracks"].unique())[0] == 0
    assert (run / "results/adapt/report/index.html").is_file()

    cli_out = tmp_path / "cli"
    assert main(["adapt", "--audio", str(data), "--labels", str(data), "--out", str(cli_out),
                 "--config", str(run / "config.yaml"), "--dataset", "mine"]) == 0
    assert "duration" in (cli_out / "work/index/rejected.csv").read_text()
    for kind in ("crnn", "ltm"):
        stage = torch.load(run / f"results/models/adapted/{kind}/model.pt", map_location="cpu", weights_only=True)
        cli = torch.load(cli_out / kind / "model.pt", map_location="cpu", weights_only=True)
        assert stage["state_dict"].keys() == cli["state_dict"].keys()
        for name, weight in stage["state_dict"].items():
            torch.testing.assert_close(cli["state_dict"][name], weight, rtol=1e-5, atol=1e-6, msg=f"{kind} {name}")


# --------------------------------------------------------------------------- reproducibility, interruption


def h5_datasets(path: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, node: arrays.__setitem__(name, node[()]) if isinstance(node, h5py.Dataset) else None)
    return arrays


def test_two_runs_from_scratch_are_identical(tmp_path):
    """Same config on CPU -> identical tracks.csv, HDF5 datasets and CRNN weights."""
    import torch

    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        run.mkdir()
        write_config(run, tiny_config())
        snakemake(run, "results/models/crnn/model.pt")
        runs.append(run)
    a, b = runs
    assert (a / "results/index/tracks.csv").read_bytes() == (b / "results/index/tracks.csv").read_bytes()
    stores = sorted(p.relative_to(a) for p in (a / "results/features").rglob("*.h5"))
    assert stores and stores == sorted(p.relative_to(b) for p in (b / "results/features").rglob("*.h5"))
    for store in stores:
        arrays_a, arrays_b = h5_datasets(a / store), h5_datasets(b / store)
        assert arrays_a.keys() == arrays_b.keys()
        for key in arrays_a:
            np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=f"{store}:{key}")
    weights_a = torch.load(a / "results/models/crnn/model.pt", map_location="cpu", weights_only=False)["state_dict"]
    weights_b = torch.load(b / "results/models/crnn/model.pt", map_location="cpu", weights_only=False)["state_dict"]
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key


def test_killed_training_resumes_and_finished_shards_are_kept(tmp_path):
    """Kill snakemake during CRNN training; the rerun resumes from the checkpoint, redoes no shard."""
    import os
    import signal
    import time

    config = tiny_config()
    config["crnn"]["epochs"] = 6
    config["crnn"]["patience"] = 6
    write_config(tmp_path, config)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", "results/models/crnn/model.pt"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = tmp_path / "results/models/crnn/checkpoint.pt"
    deadline = time.time() + 900
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    features = {p: p.stat().st_mtime_ns for p in (tmp_path / "results/features").rglob("*.h5")}
    assert features
    # Only a finished training writes model.pt; what the killed job left (checkpoint, history)
    # is not taken as complete, and the finished feature shards are not planned again.
    assert not (tmp_path / "results/models/crnn/model.pt").exists()
    jobs = planned_jobs(tmp_path, "--rerun-incomplete", "results/models/crnn/model.pt")
    assert set(jobs) == {"train_crnn"}
    snakemake(tmp_path, "--unlock")  # a killed snakemake leaves its lock, as after a power loss
    snakemake(tmp_path, "--rerun-incomplete", "results/models/crnn/model.pt")
    assert {p: p.stat().st_mtime_ns for p in features} == features
    log = (tmp_path / "logs/train_crnn.log").read_text()
    assert "resuming from" in log
    history = pd.read_csv(tmp_path / "results/models/crnn/history.csv")
    assert list(history["epoch"]) == list(range(1, len(history) + 1))
