"""One prediction folder from the per-shard folders of a peer tracker."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from beatgrid.peers import gather_predictions

    gather_predictions(snakemake.input, snakemake.output[0])
