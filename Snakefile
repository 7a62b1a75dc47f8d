# beatgrid: index -> features -> CRNN -> activations -> LTM -> inference -> evaluation -> report.
# Run:  snakemake --cores 8            (local)
#       snakemake --profile profiles/slurm   (cluster)
import os

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


# Defaults come from the repository's config.yaml whatever the working directory (-d);
# --configfile files are laid over them.
configfile: os.path.join(workflow.basedir, "config.yaml")


# A --configfile that lists `datasets` replaces the default demo instead of adding to it
# (Snakemake deep-merges config files).
override_datasets = {}
for path in workflow.config_settings.configfiles:
    override_datasets.update((yaml.safe_load(open(path)) or {}).get("datasets") or {})
if override_datasets:
    config["datasets"] = override_datasets

try:
    validate(config, "config.schema.yaml")
except WorkflowError as error:  # one line (key, value, what is allowed), not the schema
    from beatgrid.workflow import config_error_line

    schema = yaml.safe_load(open(os.path.join(workflow.basedir, "config.schema.yaml")))
    raise WorkflowError(f"Invalid config: {config_error_line(error, schema)}") from None


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/features.smk"
include: "rules/crnn.smk"
include: "rules/ltm.smk"
include: "rules/inference.smk"
include: "rules/evaluation.smk"


rule all:
    input:
        "results/report/index.html",
        "results/evaluation/summary.csv",
    default_target: True


onsuccess:
    write_provenance("results/provenance.yaml", config, workflow.basedir)
    print_summary("results/evaluation/summary.md")
