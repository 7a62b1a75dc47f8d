"""Render one batch of the synthetic demo dataset."""
from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    from beatgrid.data.synth import write_demo_batch

    write_demo_batch(
        snakemake.output[0],
        indices=snakemake.params.indices,
        seed=snakemake.params.seed,
        duration_s=snakemake.params.duration_s,
    )
