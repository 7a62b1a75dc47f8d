"""Score every prediction folder: per_track.csv, summary.csv and the Markdown summary."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from beatgrid.evaluation import evaluate_run

    _, _, markdown = evaluate_run(
        snakemake.input.tracks,
        snakemake.input.predictions,
        snakemake.input.targets,
        trim_seconds=snakemake.params.trim_seconds,
        per_track_csv=snakemake.output.per_track,
        summary_csv=snakemake.output.summary,
        markdown_path=snakemake.output.markdown,
        dropped_from=snakemake.input.mels,
    )
    print(markdown)
