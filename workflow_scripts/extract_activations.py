"""CRNN activations of one shard's tracks into results/activations/crnn/{shard}.h5."""
from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    import torch

    from beatgrid.activations import extract_shard_activations

    torch.set_num_threads(snakemake.threads)
    extract_shard_activations(snakemake.input.model, snakemake.input.mels, snakemake.output[0], device="auto")
