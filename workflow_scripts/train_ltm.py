"""Train the learned temporal model over CRNN activations."""
from pathlib import Path

from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    import torch

    from beatgrid.ltm_training import train_ltm

    torch.set_num_threads(snakemake.threads)
    train_ltm(
        activation_paths=snakemake.input.activations,
        target_paths=snakemake.input.targets,
        tracks_csv=snakemake.input.tracks,
        cfg=dict(snakemake.params.cfg),
        out_dir=Path(snakemake.output.model).parent,
    )
