"""Adapt the final CRNN + LTM pair on every adapt track (results/models/adapted)."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from pathlib import Path

    from beatgrid.adapt import AdaptConfig, TrackStores, adapt_models, replay_ids

    cfg = AdaptConfig.from_dict(snakemake.params.adapt)
    track_ids = snakemake.params.track_ids
    adapt_models(
        TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets),
        track_ids,
        cfg,
        Path(snakemake.output.crnn).parent.parent,
        replay=replay_ids(snakemake.params.replay_pool, len(track_ids), cfg.replay, cfg.fold_seed),
    )
