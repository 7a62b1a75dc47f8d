"""Adapt the final CRNN + LTM pair on every adapt track (results/models/adapted)."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from pathlib import Path

    from beatgrid.adapt import AdaptConfig, Adaptation, TrackStores

    stores = TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets)
    cfg = AdaptConfig.from_dict(snakemake.params.adapt)
    adaptation = Adaptation(stores, cfg, replay_pool=snakemake.params.replay_pool)
    adaptation.adapt_models(snakemake.params.track_ids, Path(snakemake.output.crnn).parent.parent)
