# Adaptation (`snakemake adapt`): fine-tune the starting CRNN + LTM (adapt.init_from) on the
# tracks of adapt.datasets. K fold models each score the fold they did not train on (the
# cross-validated estimate, beside the unadapted model and librosa); the learning curve
# repeats the first folds with fewer tracks; the final pair adapts on every track.

ADAPT_DIR = f"{RESULTS}/adapt"
ADAPT_CV = f"{ADAPT_DIR}/cv"
ADAPTED_MODELS = f"{RESULTS}/models/adapted"
ADAPT_STORES = dict(
    mels=per_shard(f"{RESULTS}/features/mels/{{shard}}.h5"),
    targets=per_shard(f"{RESULTS}/features/targets/{{shard}}.h5"),
    tracks=TRACKS_CSV,
    # input functions: a missing starting model stops only the runs that adapt
    init_crnn=lambda wc: init_model_file("crnn", config["adapt"]["init_from"]),
    init_ltm=lambda wc: [p for p in [init_model_file("ltm", config["adapt"]["init_from"])] if os.path.isfile(p)],
)


rule adapt_fold:
    """Fold model `fold` (on `n` of its training tracks for the curve), scored on its own fold."""
    input:
        **ADAPT_STORES,
    output:
        f"{ADAPT_CV}/{{curve}}fold{{fold}}/heldout/per_track.csv",
    log:
        f"{LOGS}/adapt/{{curve}}fold{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/adapt_fold/{{curve}}fold{{fold}}.tsv"
    wildcard_constraints:
        curve=r"(curve/n\d+/)?",
        fold=r"\d+",
    conda:
        "../envs/training.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        adapt=adapt_params(*ADAPT_TRAINING, *ADAPT_SCORING, "folds"),
        n_tracks=lambda wc: int(wc.curve.split("/")[1][1:]) if wc.curve else None,
        replay_pool=lambda wc: adapt_replay_pool(),
        track_ids=lambda wc: adapt_track_ids(),
    script:
        "../workflow_scripts/adapt_fold.py"


rule adapt_final:
    """The adapted pair `beatgrid predict --models results/models/adapted` uses: every adapt track."""
    input:
        **ADAPT_STORES,
    output:
        crnn=f"{ADAPTED_MODELS}/crnn/model.pt",
        ltm=f"{ADAPTED_MODELS}/ltm/model.pt",
    log:
        f"{LOGS}/adapt/final.log",
    benchmark:
        f"{BENCHMARKS}/adapt_final.tsv"
    conda:
        "../envs/training.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        adapt=adapt_params(*ADAPT_TRAINING),
        replay_pool=lambda wc: adapt_replay_pool(),
        track_ids=lambda wc: adapt_track_ids(),
    script:
        "../workflow_scripts/adapt_final.py"


rule adapt_baselines:
    """The unadapted model and librosa on the same adapt tracks."""
    input:
        **ADAPT_STORES,
    output:
        pretrained=f"{ADAPT_CV}/pretrained/per_track.csv",
        reference=f"{ADAPT_CV}/reference/per_track.csv",
    log:
        f"{LOGS}/adapt/baselines.log",
    benchmark:
        f"{BENCHMARKS}/adapt_baselines.tsv"
    conda:
        "../envs/evaluation.yaml"
    threads: 2
    params:
        adapt=adapt_params(*ADAPT_SCORING, "reference_trackers"),
        track_ids=lambda wc: adapt_track_ids(),
    script:
        "../workflow_scripts/adapt_baselines.py"


rule adapt_summary:
    """per_track.csv, summary.csv (columns of the evaluation's summary), learning_curve.csv and gain.csv."""
    input:
        baselines=rules.adapt_baselines.output,
        folds=lambda wc: expand(f"{ADAPT_CV}/fold{{fold}}/heldout/per_track.csv", fold=range(config["adapt"]["folds"])),
        curve=adapt_curve_outputs,
    output:
        per_track=f"{ADAPT_CV}/per_track.csv",
        summary=report(f"{ADAPT_CV}/summary.csv", caption="report/summary.rst", category="Adaptation"),
        curve=f"{ADAPT_CV}/learning_curve.csv",
        gain=f"{ADAPT_CV}/gain.csv",
    log:
        f"{LOGS}/adapt/summary.log",
    benchmark:
        f"{BENCHMARKS}/adapt_summary.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        adapt=adapt_params("folds", "fold_seed", "learning_curve", "learning_curve_folds"),
        track_ids=lambda wc: adapt_track_ids(),
        groups=lambda wc: adapt_track_groups(),
        cv_dir=lambda wc, output: os.path.dirname(output.summary),
    script:
        "../workflow_scripts/adapt_summary.py"


rule adapt_report:
    """The adaptation report: pretrained vs adapted (K-fold CV) vs librosa, and the learning curve."""
    input:
        **rules.adapt_summary.output,
    output:
        html=report(f"{ADAPT_DIR}/report/index.html", caption="report/report.rst", category="Adaptation"),
    log:
        f"{LOGS}/adapt/report.log",
    benchmark:
        f"{BENCHMARKS}/adapt_report.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        cv_dir=lambda wc, input: os.path.dirname(input.summary),
    script:
        "../workflow_scripts/adapt_report.py"
