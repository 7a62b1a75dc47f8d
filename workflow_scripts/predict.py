"""One inference method variant over every track: <track_id>.beats and <track_id>.json."""
from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    from beatgrid.inference import predict_store

    predict_store(
        snakemake.params.method,
        dict(snakemake.params.settings),
        snakemake.input.activations,
        snakemake.input.tracks,
        snakemake.output[0],
    )
