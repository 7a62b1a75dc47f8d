"""Log-mel spectrograms of one shard's tracks into results/features/mels/{shard}.h5."""
import json

from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    import pandas as pd

    from beatgrid.features import MelConfig, compute_shard_mels

    members = pd.DataFrame(json.loads(snakemake.params.members))
    compute_shard_mels(members, snakemake.output[0], MelConfig.from_dict(snakemake.params.mel))
