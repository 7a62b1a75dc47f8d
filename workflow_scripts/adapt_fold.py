"""Adapt one fold model (or a learning-curve model) and score it on the fold it did not train on."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from pathlib import Path

    from beatgrid.adapt import AdaptConfig, Adaptation, TrackStores

    stores = TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets)
    cfg = AdaptConfig.from_dict(snakemake.params.adapt)
    adaptation = Adaptation(stores, cfg, replay_pool=snakemake.params.replay_pool)
    adaptation.run_fold(
        snakemake.params.track_ids,
        int(snakemake.wildcards.fold),
        Path(snakemake.output[0]).parent.parent,
        n_tracks=snakemake.params.n_tracks,
    )
