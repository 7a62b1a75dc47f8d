"""One inference method variant over every track: <track_id>.beats and <track_id>.json."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from beatgrid.inference import predict_store

    predict_store(
        snakemake.params.method,
        dict(snakemake.params.settings),
        snakemake.input.activations,
        snakemake.input.tracks,
        snakemake.output[0],
    )
