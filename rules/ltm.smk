# Learned temporal model: a causal model over CRNN activations (GPU-tagged), then its
# whole-sequence causal pass per shard (identical to frame-by-frame streaming).

LTM_DIR = f"{RESULTS}/models/ltm"


rule train_ltm:
    """The learned temporal model trained on CRNN activations (out-of-fold ones with ltm.input_source: oof)."""
    input:
        activations=per_shard(f"{RESULTS}/activations/{CRNN_SOURCE}/{{shard}}.h5"),
        targets=per_shard(f"{RESULTS}/features/targets/{{shard}}.h5"),
        tracks=TRACKS_CSV,
        init_from=init_model_file("ltm"),
    output:
        model=f"{LTM_DIR}/model.pt",
        history=f"{LTM_DIR}/history.csv",
        curves=report(
            f"{LTM_DIR}/curves.png",
            caption="report/curves.rst",
            category="Training",
            labels={"model": "ltm"},
        ),
    log:
        f"{LOGS}/train_ltm.log",
    benchmark:
        f"{BENCHMARKS}/train_ltm/train_ltm.tsv"
    conda:
        "../envs/training.yaml"
    threads: 8  # capped by --cores locally and --max-threads on a cluster
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        cfg=config["ltm"],
    script:
        "../workflow_scripts/train_ltm.py"


rule ltm_activations:
    """The LTM's causal pass over one shard's CRNN activations."""
    input:
        model=f"{LTM_DIR}/model.pt",
        activations=f"{RESULTS}/activations/crnn/{{shard}}.h5",
    output:
        f"{RESULTS}/activations/ltm/{{shard}}.h5",
    log:
        f"{LOGS}/activations/ltm_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/ltm_activations/{{shard}}.tsv"
    conda:
        "../envs/training.yaml"
    threads: 1
    script:
        "../workflow_scripts/extract_ltm_activations.py"
