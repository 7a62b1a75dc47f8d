# Evaluation: mir_eval metrics per method x track, a summary per method x dataset x split,
# and a self-contained HTML report (also wired into `snakemake --report`).

PREDICTION_DIRS = [f"{RESULTS}/predictions/{v}" for v in INFERENCE_VARIANTS] + [
    f"{RESULTS}/predictions/{t}" for t in config["evaluation"]["reference_trackers"]
]


rule evaluate:
    """mir_eval metrics per method x track, and their summary per method x dataset x split."""
    input:
        predictions=PREDICTION_DIRS,
        targets=per_shard(f"{RESULTS}/features/targets/{{shard}}.h5"),
        mels=per_shard(f"{RESULTS}/features/mels/{{shard}}.h5"),  # for the tracks their jobs dropped
        tracks=TRACKS_CSV,
    output:
        per_track=f"{RESULTS}/evaluation/per_track.csv",
        summary=report(
            f"{RESULTS}/evaluation/summary.csv",
            caption="report/summary.rst",
            category="Evaluation",
        ),
        markdown=f"{RESULTS}/evaluation/summary.md",
    log:
        f"{LOGS}/evaluate.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/evaluate.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        trim_seconds=config["evaluation"]["trim_seconds"],
    script:
        "../workflow_scripts/evaluate.py"


rule report:
    """The self-contained HTML report with its PNG figures."""
    input:
        per_track=f"{RESULTS}/evaluation/per_track.csv",
        summary=f"{RESULTS}/evaluation/summary.csv",
        tracks=TRACKS_CSV,
        rejected=f"{RESULTS}/index/rejected.csv",
        targets=per_shard(f"{RESULTS}/features/targets/{{shard}}.h5"),  # for the tracks their jobs dropped
        histories=[f"{RESULTS}/models/crnn/history.csv", f"{RESULTS}/models/ltm/history.csv"],
        mels=per_shard(f"{RESULTS}/features/mels/{{shard}}.h5"),
        activations=per_shard(f"{RESULTS}/activations/crnn/{{shard}}.h5"),
        predictions=PREDICTION_DIRS,
    output:
        html=report(
            f"{RESULTS}/report/index.html",
            caption="report/report.rst",
            category="Report",
        ),
        figures=report(
            directory(f"{RESULTS}/report/figures"),
            patterns=["{name}.png"],
            caption="report/figures.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCHMARKS}/report/report.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        config=config,
    script:
        "../workflow_scripts/report.py"
