"""The unadapted model and the reference trackers on the adapt tracks."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake, torch=True):
    from pathlib import Path

    from beatgrid.adapt import AdaptConfig, Adaptation, TrackStores

    stores = TrackStores.from_paths(snakemake.input.tracks, snakemake.input.mels, snakemake.input.targets)
    Adaptation(stores, AdaptConfig.from_dict(snakemake.params.adapt)).evaluate_baselines(
        snakemake.params.track_ids, Path(snakemake.output.pretrained).parent.parent
    )
