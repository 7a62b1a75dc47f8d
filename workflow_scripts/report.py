"""The self-contained HTML report (results/report/index.html) and its figures."""
from pathlib import Path

from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from beatgrid.report import write_report

    write_report(
        Path(snakemake.output.html).parent,
        per_track_csv=snakemake.input.per_track,
        summary_csv=snakemake.input.summary,
        tracks_csv=snakemake.input.tracks,
        config=dict(snakemake.params.config),
        history_csvs=dict(zip(["crnn", "ltm"], snakemake.input.histories)),
        prediction_dirs=snakemake.input.predictions,
        mel_paths=snakemake.input.mels,
        activation_paths=snakemake.input.activations,
        rejected_csv=snakemake.input.rejected,
        dropped_from=[*snakemake.input.mels, *snakemake.input.targets],
        repo_dir=Path(snakemake.scriptdir).parent,
    )
