"""Render one batch of the synthetic demo dataset."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from beatgrid.data.synth import write_demo_batch

    write_demo_batch(
        snakemake.output[0],
        indices=snakemake.params.indices,
        seed=snakemake.params.seed,
        duration_s=snakemake.params.duration_s,
        styles=snakemake.params.styles,
    )
