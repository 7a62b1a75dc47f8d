"""Gather the cross-validation: per_track.csv, summary.csv, learning_curve.csv and gain.csv."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from beatgrid.adapt import AdaptConfig, combine_cv

    combine_cv(snakemake.params.cv_dir, snakemake.params.track_ids, AdaptConfig.from_dict(snakemake.params.adapt),
               snakemake.params.groups)
