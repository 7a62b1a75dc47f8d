"""Adapt one fold model (or a learning-curve model) and score it on the fold it did not train on."""
from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    import torch

    from beatgrid.adapt import AdaptConfig, TrackStores, run_fold
    from pathlib import Path

    torch.set_num_threads(snakemake.threads)
    run_fold(
        TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets),
        snakemake.params.track_ids,
        int(snakemake.wildcards.fold),
        AdaptConfig.from_dict(snakemake.params.adapt),
        Path(snakemake.output[0]).parent.parent,
        n_tracks=snakemake.params.n_tracks,
        replay_pool=snakemake.params.replay_pool,
    )
