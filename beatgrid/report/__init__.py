"""The evaluation report: one self-contained HTML page plus the PNG figures it embeds.

``results/report/index.html`` opens from disk with no network: CSS is inline and every
figure is a base64 PNG. The same figures are written under ``figures/`` so that the
Snakemake rule can declare them with ``report()`` for ``snakemake --report``.

Sections: summary tables (test split first, then val and train), per-method beat and
downbeat F-measure distributions, estimated vs annotated tempo, grid confidence vs phase
error and the flagged tracks, per-track panels (mel, activations, annotated and
predicted beats) for the best and worst tracks, training curves, the variant selection,
the inputs left out, and the config, package versions and git revision that produced it.

Modules: :mod:`.data` (what the report reads: example tracks, flagged grids, left-out
inputs), :mod:`.figures` (matplotlib on the Agg canvas, no pyplot: importing this package
leaves the caller's backend alone), :mod:`.html` (jinja2 templates under ``templates/``,
tables, embedded figures), :mod:`.sections` (one function per section), :mod:`.build`
(:func:`build_report`, :func:`write_report`, :func:`write_adapt_report`).
"""

from ..provenance import git_revision, package_versions
from .build import build_report, write_adapt_report, write_report
from .data import collect_examples, flag_tracks, left_out_inputs, select_examples
from .figures import DJ_TOLERANCE_MS, FIGURE_NAMES, write_report_figures

__all__ = [
    "FIGURE_NAMES",
    "DJ_TOLERANCE_MS",
    "package_versions",
    "git_revision",
    "select_examples",
    "collect_examples",
    "flag_tracks",
    "left_out_inputs",
    "write_report_figures",
    "build_report",
    "write_report",
    "write_adapt_report",
]
