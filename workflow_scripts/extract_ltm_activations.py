"""LTM activations (whole-sequence causal pass) of one shard into results/activations/ltm/{shard}.h5."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from beatgrid.activations import extract_ltm_shard

    extract_ltm_shard(snakemake.input.model, snakemake.input.activations, snakemake.output[0])
