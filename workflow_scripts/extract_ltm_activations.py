"""LTM activations (whole-sequence causal pass) of one shard into results/activations/ltm/{shard}.h5."""
from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    import torch

    from beatgrid.inference import extract_ltm_shard

    torch.set_num_threads(snakemake.threads)
    extract_ltm_shard(snakemake.input.model, snakemake.input.activations, snakemake.output[0])
