# Shared helpers: config checks JSON Schema cannot express, the checkpoint's track list,
# and per-shard params. Per-shard jobs take their members, and the versions of their audio
# and annotation files, as `params` (not tracks.csv and 20,000 files as inputs) so that
# re-running the index re-runs only shards whose membership or files changed, and so
# that planning 10,000 tracks stays quick.
import os
import re  # used by rules/inference.smk (included into the same namespace)

from snakemake.exceptions import WorkflowError

# Jobs import the library from this checkout, also inside conda environments.
# (Set, not required from the user: no `envvars:` needed.)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in [workflow.basedir, os.environ.get("PYTHONPATH", "")] if p))

from beatgrid.threads import wait_passively_if_oversubscribed  # noqa: E402

# `--cores` above the CPUs available (the README's --cores 8 on a 2-CPU laptop) runs several
# multi-threaded jobs on the same CPUs: their OpenMP threads must sleep, not spin, while waiting.
_granted_cores = workflow.global_resources.get("_cores")
wait_passively_if_oversubscribed(getattr(_granted_cores, "value", _granted_cores))

from beatgrid.adapt import AdaptConfig, curve_plan  # noqa: E402
from beatgrid.data.tracks import track_groups  # noqa: E402
from beatgrid.pretrained import resolve_model_file  # noqa: E402
from beatgrid.provenance import write_provenance  # noqa: E402
from beatgrid.workflow import (  # noqa: E402
    check_config,
    dataset_source_inputs,
    dataset_sources_digest,
    demo_batches,
    inference_variants,
    print_summary,
    read_shards,
)

try:
    check_config(config)
except ValueError as error:
    raise WorkflowError(f"Invalid config: {error}") from None

RESULTS = "results"
TRACKS_CSV = f"{RESULTS}/index/tracks.csv"  # the index checkpoint's track list, read by every stage
LOGS = "logs"
BENCHMARKS = f"{LOGS}/benchmarks"  # per-job wall and CPU time, RSS (benchmarks/summarize_run.py tabulates them)
INFERENCE_VARIANTS = inference_variants(config["inference"])
CRNN_SOURCE = "crnn_oof" if config["ltm"]["input_source"] == "oof" else "crnn"


def init_model_file(kind, spec=None):
    """The model.pt that `<kind>.init_from` (or `spec`) names, as an input Snakemake tracks; [] for none."""
    spec = config[kind]["init_from"] if spec is None else spec
    if not spec:
        return []
    try:
        return str(resolve_model_file(spec, kind))
    except FileNotFoundError as error:
        raise WorkflowError(f"Invalid config: {kind}.init_from: {error}") from None


def mel_params():
    keys = ("sr", "hop_length", "n_fft", "n_mels", "fmin", "fmax")
    return {k: config["features"][k] for k in keys}


def frame_params():
    """The feature settings that fix frame times (and so targets): sr and hop_length."""
    return {k: config["features"][k] for k in ("sr", "hop_length")}


def shard_inputs():
    """Shard -> members and files, from the checkpoint's tracks.csv (built once per version)."""
    return read_shards(checkpoints.index.get().output.tracks)


def shards():
    return sorted(shard_inputs())


def per_shard(pattern):
    """Input function: `pattern` expanded over every shard of the index."""
    return lambda wildcards: expand(pattern, shard=shards())


def shard_audio_version(wildcards):
    """Path, size and mtime of the shard's audio files: new audio re-runs the shard."""
    return shard_inputs()[wildcards.shard].audio_version


def shard_annotations_version(wildcards):
    """The same for the shard's annotation files (read by the targets job only)."""
    return shard_inputs()[wildcards.shard].annotations_version


def shard_tracks_param(wildcards):
    """The shard's rows as JSON: a change in membership or paths re-runs the shard."""
    return shard_inputs()[wildcards.shard].members


# Data stage: demo batches and the index's inputs.
SYNTH_DATASETS = {name: src for name, src in config["datasets"].items() if src["format"] == "synth"}


def synth_batch_dirs():
    return {
        name: [f"{RESULTS}/demo/{name}/batch{batch}" for batch in demo_batches(src)]
        for name, src in SYNTH_DATASETS.items()
    }


EXTERNAL_DATASETS = [src for src in config["datasets"].values() if src["format"] != "synth"]


def index_inputs(wildcards):
    """The demo batches and index CSVs; the external datasets' audio and annotation files
    are followed through the `sources` digest param (beatgrid.workflow.dataset_sources_digest)."""
    inputs = [d for dirs in synth_batch_dirs().values() for d in dirs]
    for src in EXTERNAL_DATASETS:
        inputs += dataset_source_inputs(src)
    return inputs


def index_sources_digest(wildcards):
    return dataset_sources_digest(EXTERNAL_DATASETS)


# Adaptation (rules/adapt.smk): the adapt block, its tracks and replay pool.
ADAPT = AdaptConfig.from_config(config).to_dict()
#: What each job's output depends on (Snakemake re-runs a job when its params change).
ADAPT_TRAINING = ("init_from", "crnn", "ltm", "replay", "fold_seed")
ADAPT_SCORING = ("init_from", "methods", "inference", "trim_seconds")


def adapt_params(*keys):
    return {key: ADAPT[key] for key in keys}


def adapt_track_rows():
    """The index rows of the adapt tracks (every split of adapt.datasets), from the checkpoint's index."""
    from beatgrid.adapt import adapt_tracks
    from beatgrid.data.tracks import read_index

    if not config["adapt"]["datasets"]:
        raise WorkflowError("Invalid config: adapt.datasets is empty; name the datasets to adapt to")
    tracks = read_index(checkpoints.index.get().output.tracks)
    try:
        return tracks[tracks["track_id"].isin(adapt_tracks(tracks, config["adapt"]["datasets"]))]
    except ValueError as error:
        raise WorkflowError(f"Invalid config: {error}") from None


def adapt_track_ids():
    return sorted(adapt_track_rows()["track_id"])


def adapt_track_groups():
    """The adapt tracks' groups (the index's `group` column): a group's tracks share a CV fold."""
    return track_groups(adapt_track_rows())


def adapt_replay_pool():
    """Synthetic training tracks (datasets of format synth, not adapting) to replay."""
    from beatgrid.data.tracks import read_index

    tracks = read_index(checkpoints.index.get().output.tracks)
    synth = set(SYNTH_DATASETS) - set(config["adapt"]["datasets"])
    return sorted(tracks.loc[tracks["dataset"].isin(synth) & (tracks["split"] == "train"), "track_id"])


def adapt_curve_outputs(wildcards):
    rows = adapt_track_rows()
    plan = curve_plan(sorted(rows["track_id"]), AdaptConfig.from_dict(ADAPT), track_groups(rows))
    return [f"{ADAPT_CV}/curve/n{n}/fold{k}/heldout/per_track.csv" for n in plan.sizes for k in plan.folds]
