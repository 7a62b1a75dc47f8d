"""Index every configured dataset: tracks.csv (usable tracks) and rejected.csv (everything else)."""
from beatgrid.workflow import log_to

with log_to(snakemake.log[0]):
    from beatgrid.data.index import build_index, write_index

    tracks, rejected = build_index(
        dict(snakemake.params.datasets),
        dict(snakemake.params.split),
        snakemake.params.tracks_per_shard,
        synth_dirs=dict(snakemake.params.synth_dirs),
    )
    write_index(tracks, rejected, snakemake.output.tracks, snakemake.output.rejected)
