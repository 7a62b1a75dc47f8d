"""The unadapted model and the reference trackers on the adapt tracks."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from pathlib import Path

    from beatgrid.adapt import AdaptConfig, TrackStores, evaluate_baselines

    evaluate_baselines(
        TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets),
        snakemake.params.track_ids,
        AdaptConfig.from_dict(snakemake.params.adapt),
        Path(snakemake.output.pretrained).parent.parent,
    )
