# Shared helpers: config checks JSON Schema cannot express, the checkpoint's track list,
# and per-shard inputs/params. Per-shard jobs take their members as `params` (not
# tracks.csv as an input) so that re-running the index re-runs only shards whose
# membership or files changed.
import os
import re  # used by rules/inference.smk (included into the same namespace)

from snakemake.exceptions import WorkflowError

# Jobs import the library from this checkout, also inside conda environments.
# (Set, not required from the user: no `envvars:` needed.)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in [workflow.basedir, os.environ.get("PYTHONPATH", "")] if p))

from beatgrid.pretrained import resolve_model_file  # noqa: E402
from beatgrid.provenance import write_provenance  # noqa: E402
from beatgrid.workflow import (  # noqa: E402
    check_config,
    dataset_source_files,
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


def shard_audio(wildcards):
    return shard_inputs()[wildcards.shard].audio_paths


def shard_annotations(wildcards):
    return shard_inputs()[wildcards.shard].annotation_paths


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


def index_inputs(wildcards):
    inputs = [d for dirs in synth_batch_dirs().values() for d in dirs]
    for name, src in config["datasets"].items():
        if src["format"] != "synth":
            inputs += dataset_source_files(src)
    return inputs
