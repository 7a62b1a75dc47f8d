"""Index every configured dataset: tracks.csv (usable tracks) and rejected.csv (everything else)."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from beatgrid.data.index import build_index
    from beatgrid.data.tracks import write_index

    tracks, rejected = build_index(
        dict(snakemake.params.datasets),
        dict(snakemake.params.split),
        snakemake.params.tracks_per_shard,
        synth_dirs=dict(snakemake.params.synth_dirs),
        min_duration_s=snakemake.params.min_duration_s,
    )
    for row in rejected.itertuples():
        print(f"rejected: {row.audio_path or row.annotation_path}: {row.reason}")
    if tracks.empty:
        raise SystemExit(f"No usable track in any dataset ({len(rejected)} inputs rejected, reasons above).")
    print(f"indexed {len(tracks)} tracks in {tracks['shard'].nunique()} shards; rejected {len(rejected)} inputs")
    write_index(tracks, rejected, snakemake.output.tracks, snakemake.output.rejected)
