# Inference: every method variant writes `.beats` and beatgrid `.json` for every track.
# Settings given as lists in `inference:` expand into variants (see beatgrid.workflow).


rule predict:
    input:
        activations=lambda wc: expand(
            f"{RESULTS}/activations/{INFERENCE_VARIANTS[wc.variant]['source']}/{{shard}}.h5", shard=shards()
        ),
        tracks=f"{RESULTS}/index/tracks.csv",
    output:
        directory(f"{RESULTS}/predictions/{{variant}}"),
    params:
        method=lambda wc: INFERENCE_VARIANTS[wc.variant]["method"],
        settings=lambda wc: INFERENCE_VARIANTS[wc.variant]["settings"],
    wildcard_constraints:
        variant="|".join(re.escape(v) for v in INFERENCE_VARIANTS) or "no-variants",
    log:
        f"{LOGS}/predict/{{variant}}.log",
    benchmark:
        f"{BENCHMARKS}/predict/{{variant}}.tsv",
    conda:
        "../envs/evaluation.yaml"
    script:
        "../workflow_scripts/predict.py"


rule reference_tracker:
    """A peer from an installed library (librosa's beat_track) on the same tracks."""
    input:
        tracks=f"{RESULTS}/index/tracks.csv",
    output:
        directory(f"{RESULTS}/predictions/{{tracker}}"),
    params:
        sr=config["features"]["sr"],
    wildcard_constraints:
        tracker="|".join(config["evaluation"]["reference_trackers"]) or "no-trackers",
    threads: 2
    log:
        f"{LOGS}/predict/{{tracker}}.log",
    benchmark:
        f"{BENCHMARKS}/reference_tracker/{{tracker}}.tsv",
    conda:
        "../envs/evaluation.yaml"
    script:
        "../workflow_scripts/reference_tracker.py"
