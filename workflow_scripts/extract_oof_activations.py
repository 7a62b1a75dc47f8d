"""Out-of-fold CRNN activations of one shard: each training track from the fold model that did not see it."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from beatgrid.activations import extract_oof_shard

    extract_oof_shard(
        main_model=snakemake.input.model,
        fold_models=snakemake.input.fold_models,
        mel_path=snakemake.input.mels,
        tracks_csv=snakemake.input.tracks,
        out_path=snakemake.output[0],
        folds=snakemake.params.folds,
        fold_seed=snakemake.params.fold_seed,
    )
