"""The unadapted model and the reference trackers on the adapt tracks."""
from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    from pathlib import Path

    import torch

    from beatgrid.adapt import AdaptConfig, TrackStores, evaluate_baselines

    torch.set_num_threads(snakemake.threads)
    evaluate_baselines(
        TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets),
        snakemake.params.track_ids,
        AdaptConfig.from_dict(snakemake.params.adapt),
        Path(snakemake.output.pretrained).parent.parent,
    )
