"""The reference peer (librosa's beat_track) on every indexed track."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    import pandas as pd

    from beatgrid.reference import write_reference_predictions

    tracks = pd.read_csv(snakemake.input.tracks, dtype={"shard": str, "track_id": str})
    write_reference_predictions(tracks, snakemake.output[0], tracker=snakemake.wildcards.tracker, sr=snakemake.params.sr)
