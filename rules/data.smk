# Data: render the synthetic demo, then index every dataset (a checkpoint: the track list
# is data, so per-shard jobs are known only after it runs).


rule demo_synth:
    """Render one batch of the demo: audio, .beats and label JSON with exactly known beats."""
    output:
        directory(f"{RESULTS}/demo/{{dataset}}/batch{{batch}}"),
    log:
        f"{LOGS}/demo_synth/{{dataset}}_{{batch}}.log",
    benchmark:
        f"{BENCHMARKS}/demo_synth/{{dataset}}_{{batch}}.tsv"
    wildcard_constraints:
        batch=r"\d+",
    conda:
        "../envs/features.yaml"
    params:
        indices=lambda wc: demo_batches(SYNTH_DATASETS[wc.dataset])[wc.batch],
        seed=lambda wc: SYNTH_DATASETS[wc.dataset]["seed"],
        duration_s=lambda wc: SYNTH_DATASETS[wc.dataset]["duration_s"],
        styles=lambda wc: SYNTH_DATASETS[wc.dataset].get("styles"),
    script:
        "../workflow_scripts/demo_synth.py"


checkpoint index:
    """Read every dataset, validate audio and annotations, assign splits and shards."""
    input:
        index_inputs,
    output:
        tracks=TRACKS_CSV,
        rejected=f"{RESULTS}/index/rejected.csv",
    log:
        f"{LOGS}/index.log",
    benchmark:
        f"{BENCHMARKS}/index/index.tsv"
    conda:
        "../envs/features.yaml"
    params:
        datasets=config["datasets"],
        split=config["split"],
        tracks_per_shard=config["features"]["tracks_per_shard"],
        synth_dirs=synth_batch_dirs(),
        # adding, editing or removing a dataset file re-runs the index (see index_inputs)
        sources=index_sources_digest,
        # shorter audio has no complete analysis frame (seconds)
        min_duration_s=config["features"]["n_fft"] / config["features"]["sr"],
    script:
        "../workflow_scripts/build_index.py"
