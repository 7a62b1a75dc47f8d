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
include: "rules/adapt.smk"


rule all:
    """Every output of the run: the report, the summary and each intermediate store and model."""
    default_target: True
    input:
        "results/report/index.html",
        "results/evaluation/summary.csv",
        # Every finished intermediate too: Snakemake rebuilds a missing file only for a job that
        # needs it, so without these a store that `beatgrid check --repair` removed (or a model.pt
        # Snakemake deleted after a failed job) would stay missing behind an up-to-date report.
        per_shard(f"{RESULTS}/features/mels/{{shard}}.h5"),
        per_shard(f"{RESULTS}/features/targets/{{shard}}.h5"),
        per_shard(f"{RESULTS}/activations/crnn/{{shard}}.h5"),
        per_shard(f"{RESULTS}/activations/{CRNN_SOURCE}/{{shard}}.h5"),
        per_shard(f"{RESULTS}/activations/ltm/{{shard}}.h5"),
        f"{CRNN_DIR}/model.pt",
        f"{LTM_DIR}/model.pt",
        PREDICTION_DIRS,


# Stage targets: `snakemake --cores N <stage>` runs the workflow up to that stage, from a
# clean directory too (inputs behind the index checkpoint are input functions, which
# Snakemake re-evaluates once the index exists). `index` and `report` are the rules
# themselves. A new stage adds its target rule here and a row to the README's stage table.


rule features:
    """Log-mel and target stores of every shard."""
    input:
        per_shard(f"{RESULTS}/features/mels/{{shard}}.h5"),
        per_shard(f"{RESULTS}/features/targets/{{shard}}.h5"),
    localrule: True


rule crnn:
    """The trained CRNN (and its fold models when the LTM reads out-of-fold activations)."""
    input:
        f"{CRNN_DIR}/model.pt",
        expand(f"{RESULTS}/models/crnn_fold{{fold}}/model.pt", fold=range(config["ltm"]["folds"]))
        if CRNN_SOURCE == "crnn_oof"
        else [],
    localrule: True


rule activations:
    """CRNN activations of every shard (and the out-of-fold ones the LTM trains on)."""
    input:
        per_shard(f"{RESULTS}/activations/crnn/{{shard}}.h5"),
        per_shard(f"{RESULTS}/activations/{CRNN_SOURCE}/{{shard}}.h5"),
    localrule: True


rule ltm:
    """The trained LTM and its activations of every shard."""
    input:
        f"{LTM_DIR}/model.pt",
        per_shard(f"{RESULTS}/activations/ltm/{{shard}}.h5"),
    localrule: True


rule predictions:
    """Every inference method variant and reference tracker on every track."""
    input:
        PREDICTION_DIRS,
    localrule: True


rule evaluation:
    """Metrics per method x track and the summary per method x dataset x split."""
    input:
        rules.evaluate.output,
    localrule: True


rule adapt:
    """Stage target: the adapted pair, its cross-validated estimate and report."""
    input:
        rules.adapt_final.output,
        rules.adapt_report.output,
    localrule: True


onsuccess:
    write_provenance("results/provenance.yaml", config, workflow.basedir)
    print_summary("results/evaluation/summary.md")
