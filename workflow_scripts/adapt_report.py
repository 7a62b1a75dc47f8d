"""The adaptation report: pretrained vs adapted (K-fold CV) vs librosa, spread, learning curve."""
from beatgrid.workflow import workflow_job

with workflow_job(snakemake):
    from pathlib import Path

    from beatgrid.report import write_adapt_report

    write_adapt_report(snakemake.params.cv_dir, Path(snakemake.output.html).parent)
