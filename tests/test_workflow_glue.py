"""beatgrid.workflow: the config checks, variants, demo batches and shard membership the Snakefile uses."""

import copy
import json

import jsonschema
import pandas as pd
import pytest
import yaml

from beatgrid.workflow import (
    check_config,
    config_error_line,
    demo_batches,
    inference_variants,
    shard_inputs,
)

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def default_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_default_config_is_valid(default_config):
    schema = yaml.safe_load((REPO / "config.schema.yaml").read_text())
    jsonschema.validate(default_config, schema)
    check_config(default_config)
    tuned = copy.deepcopy(default_config)  # augmentation settings instead of true/false
    tuned["crnn"]["augment"] = {"p_tempo": 0.7, "tempo_rate": [0.7, 1.4], "tilt_db": 12}
    tuned["adapt"]["crnn"] = {**tuned["adapt"]["crnn"], "augment": {"p_noise": 0.0}}
    jsonschema.validate(tuned, schema)


@pytest.mark.parametrize(
    "overlays",
    [[path] for path in sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "benchmarks" / "configs").glob("*.yaml"))]
    + [[REPO / "configs" / "pretrain.yaml", path] for path in sorted((REPO / "benchmarks" / "configs" / "pretrain_sweep").glob("*.yaml"))],
    ids=lambda overlays: "+".join(p.name for p in overlays),
)
def test_the_repository_configs_pass_the_schema(overlays):
    """Every config the README and RESULTS.md tell people to run is valid over config.yaml."""
    from beatgrid.cli import _merged
    from beatgrid.workflow import load_config, validate_config

    config = load_config()
    for path in overlays:
        config = _merged(config, load_config(path))
    validate_config(config, overlays[-1])


@pytest.mark.parametrize(
    "path, value",
    [
        (("crnn", "not_a_key"), 1),
        (("features", "hop_length"), -441),
        (("features", "sr"), "22050"),
        (("split", "val_fraction"), 1.5),
        (("datasets", "demo", "n_tracks"), 0),
        (("datasets", "demo", "bogus"), 1),
        (("ltm", "kind"), "transformer"),
        (("crnn", "augment"), {"p_tempo": 1.5}),
        (("crnn", "augment"), {"tempo_rate": [0.8]}),
        (("adapt", "crnn"), {"augment": {"bogus": 1}}),
        (("crnn", "loss"), "mse"),
        (("adapt", "ltm"), {"loss": "focal"}),
        (("ltm", "shift_tolerance_frames"), -1),
        (("adapt", "crnn"), {"keep_norm_statistics": "sometimes"}),
    ],
)
def test_schema_rejects_bad_values(default_config, path, value):
    schema = yaml.safe_load((REPO / "config.schema.yaml").read_text())
    cfg = copy.deepcopy(default_config)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, schema)


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("crnn", "learning_rate"), 0.1, "crnn.learning_rate: unknown key (value 0.1); allowed keys: amp,"),
        (("features", "hop_length"), -441, "features.hop_length = -441: must be an integer, >= 1"),
        (("ltm", "kind"), "transformer", "ltm.kind = 'transformer': must be one of 'tcn', 'gru'"),
        (("inference", "peak_threshold"), "high", "inference.peak_threshold = 'high': must be a number or a list"),
        (("datasets", "demo", "bogus"), 1, "datasets.demo.bogus: unknown key (value 1); allowed keys: duration_s,"),
        (("datasets", "bad name"), {"format": "synth"}, "datasets: the name 'bad name' is not allowed; names must match"),
        (("adapt", "crnn", "keep_norm_statistics"), "yes",
         "adapt.crnn.keep_norm_statistics = 'yes': must be true or false or 'auto'"),
    ],
)
def test_schema_errors_become_one_line_with_key_value_and_what_is_allowed(default_config, path, value, expected):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    cfg = copy.deepcopy(default_config)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WorkflowError) as raised:  # as the Snakefile's validate() raises it
        validate(cfg, str(REPO / "config.schema.yaml"))
    line = config_error_line(raised.value, yaml.safe_load((REPO / "config.schema.yaml").read_text()))
    assert line.startswith(expected)
    assert "\n" not in line and len(line) < 400


def test_check_config_names_the_key(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["split"].update(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="split.val_fraction"):
        check_config(cfg)
    cfg = copy.deepcopy(default_config)
    cfg["features"]["fmax"] = 20000
    with pytest.raises(ValueError, match="features.fmax"):
        check_config(cfg)
    cfg = copy.deepcopy(default_config)
    cfg["split"]["test_datasets"] = ["nope"]
    with pytest.raises(ValueError, match="test_datasets"):
        check_config(cfg)
    cfg = copy.deepcopy(default_config)
    cfg["datasets"]["mine"] = {"format": "index_csv", "path": "/nonexistent/index.csv"}
    with pytest.raises(ValueError, match="datasets.mine.path"):
        check_config(cfg)
    cfg = copy.deepcopy(default_config)
    cfg["datasets"]["more"] = {"format": "synth", "n_tracks": 4, "duration_s": 10, "seed": 1,
                               "styles": ["rock", "polka"]}
    with pytest.raises(ValueError, match="datasets.more.styles"):
        check_config(cfg)
    for pattern, problem in (("(unclosed", "not a regular expression"), ("^no_group_", "no capture group")):
        cfg = copy.deepcopy(default_config)
        cfg["datasets"]["mine"] = {"format": "index_csv", "path": __file__, "group_pattern": pattern}
        with pytest.raises(ValueError, match=rf"datasets.mine.group_pattern: .*{problem}"):
            check_config(cfg)
    for block in ("inference", "adapt"):
        cfg = copy.deepcopy(default_config)
        cfg[block]["methods"] = ["crnn_dbn", "crnn_magic"]
        with pytest.raises(ValueError, match=rf"{block}.methods: unknown inference methods \['crnn_magic'\]"):
            check_config(cfg)


def test_demo_batches_are_stable_when_tracks_are_added():
    before = demo_batches({"n_tracks": 48, "tracks_per_job": 16})
    after = demo_batches({"n_tracks": 49, "tracks_per_job": 16})
    assert set(after) == set(before) | {"003"}
    assert all(after[b] == before[b] for b in before)
    assert after["003"] == list(range(48, 64))  # whole batches: the next 15 additions render nothing
    assert demo_batches({"n_tracks": 50, "tracks_per_job": 16}) == after


def test_inference_variants_expand_lists_only_for_methods_that_read_them():
    variants = inference_variants(
        {
            "methods": ["crnn_peaks", "crnn_grid", "ltm_online_peaks"],
            "bpm_min": [60, 80],
            "bpm_max": 200,
            "peak_threshold": [0.3, 0.5],
            "online_threshold": 0.5,
        }
    )
    assert set(variants) == {
        "crnn_peaks@peak_threshold=0.3",
        "crnn_peaks@peak_threshold=0.5",
        "crnn_grid@bpm_min=60",
        "crnn_grid@bpm_min=80",
        "ltm_online_peaks",
    }
    assert variants["crnn_grid@bpm_min=80"]["settings"] == {"bpm_min": 80, "bpm_max": 200}
    assert variants["ltm_online_peaks"]["source"] == "ltm"


def shard_members(tracks, shard):
    return shard_inputs(tracks)[shard].members


def test_shard_members_ignore_other_shards_and_the_split():
    tracks = pd.DataFrame(
        {
            "track_id": ["a", "b", "c"],
            "audio_path": ["a.wav", "b.wav", "c.wav"],
            "annotation_path": ["a.beats", "b.beats", "c.beats"],
            "annotation_format": ["beats"] * 3,
            "has_downbeats": [True, True, False],
            "duration_s": [10.0, 11.0, 12.0],
            "split": ["train", "val", "test"],
            "shard": ["000", "001", "000"],
        }
    )
    members = shard_members(tracks, "000")
    assert [row["track_id"] for row in json.loads(members)] == ["a", "c"]
    resplit = tracks.assign(split=["test", "test", "train"])
    assert shard_members(resplit, "000") == members
    grown = pd.concat([tracks, tracks.iloc[[1]].assign(track_id="d")])
    assert shard_members(grown, "000") == members
    assert shard_members(grown, "001") != shard_members(tracks, "001")


def test_the_schema_offers_exactly_the_training_losses(default_config):
    """``loss`` in the schema is the list of losses training knows, and a config's choice reaches it."""
    from beatgrid.models.losses import LOSSES
    from beatgrid.training import TrainConfig

    schema = yaml.safe_load((REPO / "config.schema.yaml").read_text())
    assert schema["$defs"]["train_common"]["loss"]["enum"] == list(LOSSES)
    block = {**default_config["crnn"], "loss": "shift_tolerant", "shift_tolerance_frames": 2}
    train_config = TrainConfig.from_dict(block)
    assert (train_config.loss, train_config.shift_tolerance_frames) == ("shift_tolerant", 2)


def test_schema_defaults_equal_config_yaml(default_config):
    """A key left out of a --configfile means the same thing as in config.yaml."""
    schema = yaml.safe_load((REPO / "config.schema.yaml").read_text())
    for block, spec in schema["properties"].items():
        if block == "datasets":
            continue
        for key, prop in spec["properties"].items():
            assert key in default_config[block], f"config.yaml lacks {block}.{key}"
            if "default" in prop:
                assert prop["default"] == default_config[block][key], f"{block}.{key}"


def test_read_shards_matches_shard_inputs_and_follows_file_changes(tmp_path):
    from beatgrid.workflow import read_shards

    rows = [
        {"track_id": f"t{i}", "dataset": "demo", "audio_path": f"t{i}.wav", "annotation_path": f"t{i}.beats",
         "annotation_format": "beats",
         "has_downbeats": True, "duration_s": 10.0 + i, "split": "train", "shard": f"{i % 3:03d}"}
        for i in range(9)
    ]
    path = tmp_path / "tracks.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    tracks = pd.read_csv(path, dtype={"shard": str, "track_id": str})
    shards = read_shards(path)
    assert sorted(shards) == ["000", "001", "002"]
    for shard, inputs in shards.items():
        assert inputs.members == shard_members(tracks, shard)
        assert inputs.audio_paths == sorted(tracks.loc[tracks["shard"] == shard, "audio_path"])
        assert inputs.annotation_paths == sorted(tracks.loc[tracks["shard"] == shard, "annotation_path"])
    import os

    pd.DataFrame(rows[:3]).to_csv(path, index=False)
    os.utime(path, ns=(1, 1))  # a different version of the file, whatever the clock's resolution
    assert sorted(read_shards(path)) == ["000", "001", "002"] and len(json.loads(read_shards(path)["000"].members)) == 1


def test_the_package_default_config_is_the_workflow_config(default_config):
    """`beatgrid train-crnn` (and any installed use) reads the same defaults as the Snakefile."""
    from beatgrid.workflow import default_config_path, load_config

    assert default_config_path().is_file()
    assert load_config() == default_config


def test_sources_digest_follows_every_dataset_file(tmp_path):
    import os

    from beatgrid.workflow import dataset_source_inputs, dataset_sources_digest

    audio, beats = tmp_path / "audio", tmp_path / "beats"
    audio.mkdir()
    beats.mkdir()
    for stem in ("a", "b"):
        (audio / f"{stem}.wav").write_bytes(b"RIFF")
        (beats / f"{stem}.beats").write_text("0.5 1\n")
    source = {"format": "beats_dir", "audio_dir": str(audio), "annotations_dir": str(beats)}
    assert dataset_source_inputs(source) == []
    assert dataset_source_inputs({"format": "index_csv", "path": "x/dataset_index.csv"}) == ["x/dataset_index.csv"]
    before = dataset_sources_digest([source])
    assert dataset_sources_digest([source]) == before
    (beats / "a.beats").write_text("0.6 1\n")  # edited (other size)
    edited = dataset_sources_digest([source])
    assert edited != before
    os.utime(audio / "b.wav", ns=(1, 1))  # touched
    touched = dataset_sources_digest([source])
    assert touched != edited
    (audio / "c.wav").write_bytes(b"RIFF")  # added
    added = dataset_sources_digest([source])
    assert added != touched
    (audio / "c.wav").unlink()  # removed again
    assert dataset_sources_digest([source]) == touched
    (beats / "c.jams").write_text("{}")  # a JAMS annotation is a dataset file too
    assert dataset_sources_digest([source]) != touched


def test_files_digest_changes_with_any_file_and_only_then(tmp_path):
    """A shard's `params.audio` / `params.annotations`: new content, a touch, a removal or
    another file list re-run the job; reading the same files again does not."""
    import os

    from beatgrid.workflow import files_digest

    paths = [str(tmp_path / f"{stem}.wav") for stem in ("a", "b")]
    for path in paths:
        Path(path).write_bytes(b"RIFF")
    before = files_digest(paths)
    assert files_digest(list(reversed(paths)) + paths[:1]) == before  # order and repeats do not count
    assert files_digest(paths[:1]) != before
    Path(paths[0]).write_bytes(b"RIFF1")
    edited = files_digest(paths)
    assert edited != before
    os.utime(paths[1], ns=(1, 1))
    touched = files_digest(paths)
    assert touched != edited
    Path(paths[1]).unlink()
    assert files_digest(paths) not in {before, edited, touched}


def test_shard_file_versions_follow_their_own_files(tmp_path):
    """Editing one shard's annotation changes that shard's annotation version only; the
    audio versions stay, so only its targets job re-runs."""
    from beatgrid.workflow import shard_inputs

    rows = []
    for i in range(4):
        audio, beats = tmp_path / f"t{i}.wav", tmp_path / f"t{i}.beats"
        audio.write_bytes(b"RIFF")
        beats.write_text("0.5 1\n")
        rows.append({"track_id": f"t{i}", "dataset": "demo", "audio_path": str(audio), "annotation_path": str(beats),
                     "annotation_format": "beats", "has_downbeats": True, "duration_s": 10.0, "split": "train",
                     "shard": f"{i % 2:03d}"})
    def versions() -> dict[str, tuple[str, str]]:
        return {shard: (inputs.audio_version, inputs.annotations_version)
                for shard, inputs in shard_inputs(pd.DataFrame(rows)).items()}

    before = versions()
    (tmp_path / "t1.beats").write_text("0.75 1\n")
    after = versions()
    assert after["001"][1] != before["001"][1]
    assert after["000"] == before["000"]
    assert after["001"][0] == before["001"][0]
