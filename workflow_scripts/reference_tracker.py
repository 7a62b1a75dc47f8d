"""The reference peer (librosa's beat_track) on one shard's tracks."""
import json

from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    import pandas as pd

    from beatgrid.reference import write_reference_predictions

    members = pd.DataFrame(json.loads(snakemake.params.members))
    write_reference_predictions(members, snakemake.output[0], tracker=snakemake.wildcards.tracker, sr=snakemake.params.sr)
