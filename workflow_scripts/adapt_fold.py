"""Adapt one fold model (or a learning-curve model) and score it on the fold it did not train on."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from pathlib import Path

    from beatgrid.adapt import AdaptConfig, TrackStores, run_fold

    run_fold(
        TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets),
        snakemake.params.track_ids,
        int(snakemake.wildcards.fold),
        AdaptConfig.from_dict(snakemake.params.adapt),
        Path(snakemake.output[0]).parent.parent,
        n_tracks=snakemake.params.n_tracks,
        replay_pool=snakemake.params.replay_pool,
    )
