# CRNN: train on random crops from the HDF5 stores (GPU-tagged), then extract activations
# per shard. With ltm.input_source == "oof", K fold models also give out-of-fold
# activations of the training tracks for the LTM.

CRNN_DIR = f"{RESULTS}/models/crnn"


rule train_crnn:
    """The CRNN (or fold model `crnn_fold<k>`) trained on random crops of the mel and target stores."""
    input:
        mels=per_shard(f"{RESULTS}/features/mels/{{shard}}.h5"),
        targets=per_shard(f"{RESULTS}/features/targets/{{shard}}.h5"),
        tracks=TRACKS_CSV,
        init_from=init_model_file("crnn"),
    output:
        model=f"{RESULTS}/models/{{crnn_model}}/model.pt",
        history=f"{RESULTS}/models/{{crnn_model}}/history.csv",
        curves=report(
            f"{RESULTS}/models/{{crnn_model}}/curves.png",
            caption="report/curves.rst",
            category="Training",
            labels={"model": "{crnn_model}"},
        ),
    log:
        f"{LOGS}/train_{{crnn_model}}.log",
    benchmark:
        f"{BENCHMARKS}/train_crnn/{{crnn_model}}.tsv"
    wildcard_constraints:
        crnn_model=r"crnn(_fold\d+)?",
    conda:
        "../envs/training.yaml"
    threads: 8  # capped by --cores locally and --max-threads on a cluster
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        cfg=config["crnn"],
        fold=lambda wc: wc.crnn_model.removeprefix("crnn_fold") if wc.crnn_model != "crnn" else None,
        # Only fold models depend on the fold layout: editing ltm.folds never retrains the main CRNN.
        folds=lambda wc: config["ltm"]["folds"] if wc.crnn_model != "crnn" else None,
        fold_seed=lambda wc: config["split"]["seed"] if wc.crnn_model != "crnn" else None,
    script:
        "../workflow_scripts/train_crnn.py"


rule crnn_activations:
    """The trained CRNN's beat and downbeat activations of one shard's tracks."""
    input:
        model=f"{CRNN_DIR}/model.pt",
        mels=f"{RESULTS}/features/mels/{{shard}}.h5",
    output:
        f"{RESULTS}/activations/crnn/{{shard}}.h5",
    log:
        f"{LOGS}/activations/crnn_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/crnn_activations/{{shard}}.tsv"
    conda:
        "../envs/training.yaml"
    threads: 2
    script:
        "../workflow_scripts/extract_activations.py"


rule crnn_oof_activations:
    """Activations of each training track from the fold model that did not train on it."""
    input:
        model=f"{CRNN_DIR}/model.pt",
        fold_models=expand(f"{RESULTS}/models/crnn_fold{{fold}}/model.pt", fold=range(config["ltm"]["folds"])),
        mels=f"{RESULTS}/features/mels/{{shard}}.h5",
        tracks=TRACKS_CSV,
    output:
        f"{RESULTS}/activations/crnn_oof/{{shard}}.h5",
    log:
        f"{LOGS}/activations/crnn_oof_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/crnn_oof_activations/{{shard}}.tsv"
    conda:
        "../envs/training.yaml"
    threads: 2
    params:
        folds=config["ltm"]["folds"],
        fold_seed=config["split"]["seed"],
    script:
        "../workflow_scripts/extract_oof_activations.py"
