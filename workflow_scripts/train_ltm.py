"""Train the learned temporal model over CRNN activations."""
from pathlib import Path

from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from beatgrid.training.ltm import train_ltm

    train_ltm(
        activation_paths=snakemake.input.activations,
        target_paths=snakemake.input.targets,
        tracks_csv=snakemake.input.tracks,
        cfg=dict(snakemake.params.cfg),
        out_dir=Path(snakemake.output.model).parent,
    )
