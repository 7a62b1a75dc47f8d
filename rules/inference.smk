# Inference: every method variant writes `.beats` and beatgrid `.json` for every track.
# Settings given as lists in `inference:` expand into variants (see beatgrid.workflow).


rule predict:
    """One inference method variant on every track: `.beats` and beatgrid `.json` files."""
    input:
        activations=lambda wc: expand(
            f"{RESULTS}/activations/{INFERENCE_VARIANTS[wc.variant]['source']}/{{shard}}.h5", shard=shards()
        ),
        tracks=TRACKS_CSV,
    output:
        directory(f"{RESULTS}/predictions/{{variant}}"),
    log:
        f"{LOGS}/predict/{{variant}}.log",
    benchmark:
        f"{BENCHMARKS}/predict/{{variant}}.tsv"
    wildcard_constraints:
        variant="|".join(re.escape(v) for v in INFERENCE_VARIANTS) or "no-variants",
    conda:
        "../envs/evaluation.yaml"
    params:
        method=lambda wc: INFERENCE_VARIANTS[wc.variant]["method"],
        settings=lambda wc: INFERENCE_VARIANTS[wc.variant]["settings"],
    script:
        "../workflow_scripts/predict.py"


rule reference_shard:
    """A peer from an installed library (librosa's beat_track) on one shard's tracks.
    It reads their audio, so new audio under the same name re-runs it (and only it)."""
    input:
        index=ancient(TRACKS_CSV),  # as rules/features.smk
    output:
        directory(f"{RESULTS}/reference/{{tracker}}/{{shard}}"),
    log:
        f"{LOGS}/reference/{{tracker}}_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/reference_shard/{{tracker}}_{{shard}}.tsv"
    wildcard_constraints:
        tracker="|".join(config["evaluation"]["reference_trackers"]) or "no-trackers",
        shard=r"\d+",
    conda:
        "../envs/evaluation.yaml"
    params:
        members=shard_tracks_param,
        audio=shard_audio_version,
        sr=config["features"]["sr"],
    script:
        "../workflow_scripts/reference_tracker.py"


rule reference_tracker:
    """The shards' reference predictions in one prediction folder, as every method has."""
    input:
        lambda wc: expand(f"{RESULTS}/reference/{wc.tracker}/{{shard}}", shard=shards()),
    output:
        directory(f"{RESULTS}/predictions/{{tracker}}"),
    log:
        f"{LOGS}/predict/{{tracker}}.log",
    wildcard_constraints:
        tracker="|".join(config["evaluation"]["reference_trackers"]) or "no-trackers",
    conda:
        "../envs/evaluation.yaml"
    script:
        "../workflow_scripts/gather_predictions.py"
