"""CRNN activations of one shard's tracks into results/activations/crnn/{shard}.h5."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from beatgrid.activations import extract_shard_activations

    extract_shard_activations(snakemake.input.model, snakemake.input.mels, snakemake.output[0], device="auto")
