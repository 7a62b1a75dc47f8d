"""Beat and downbeat frame targets of one shard's tracks into results/features/targets/{shard}.h5."""
import json

from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    import pandas as pd

    from beatgrid.features import compute_shard_targets

    members = pd.DataFrame(json.loads(snakemake.params.members))
    compute_shard_targets(
        members,
        snakemake.output[0],
        sr=snakemake.params.frames["sr"],
        hop_length=snakemake.params.frames["hop_length"],
        widen_frames=snakemake.params.targets["widen_frames"],
        widen_value=snakemake.params.targets["widen_value"],
    )
