"""Train the CRNN (or one of its out-of-fold models) on the mel and target stores."""
from pathlib import Path

from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from beatgrid.training.crnn import train_crnn
    from beatgrid.training.stores import TrainingStores

    train_crnn(
        TrainingStores(snakemake.input.mels, snakemake.input.targets, snakemake.input.tracks),
        cfg=dict(snakemake.params.cfg),
        out_dir=Path(snakemake.output.model).parent,
        fold=None if snakemake.params.fold is None else int(snakemake.params.fold),
        folds=snakemake.params.folds,
        fold_seed=snakemake.params.fold_seed,
    )
