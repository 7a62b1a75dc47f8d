"""Train the learned temporal model over CRNN activations."""
from pathlib import Path

from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from beatgrid.training.ltm import train_ltm
    from beatgrid.training.stores import TrainingStores

    train_ltm(
        TrainingStores(snakemake.input.activations, snakemake.input.targets, snakemake.input.tracks),
        cfg=dict(snakemake.params.cfg),
        out_dir=Path(snakemake.output.model).parent,
    )
