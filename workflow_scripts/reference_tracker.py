"""The peer tracker (librosa's beat_track) on one shard's tracks."""
import json

from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    import pandas as pd

    from beatgrid.peers import write_peer_predictions

    members = pd.DataFrame(json.loads(snakemake.params.members))
    write_peer_predictions(members, snakemake.output[0], tracker=snakemake.wildcards.tracker, sr=snakemake.params.sr)
