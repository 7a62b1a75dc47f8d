# Features: one job per shard writes the log-mel store, another the frame targets.
# Targets depend only on the settings that fix frame times (sr, hop_length), so changing
# n_mels recomputes mels but not targets.


rule mels:
    """The log-mel store of one shard's tracks."""
    input:
        audio=shard_audio,
    output:
        f"{RESULTS}/features/mels/{{shard}}.h5",
    log:
        f"{LOGS}/features/mels_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/mels/{{shard}}.tsv"
    conda:
        "../envs/features.yaml"
    params:
        members=shard_tracks_param,
        mel=mel_params(),
    script:
        "../workflow_scripts/compute_mels.py"


rule targets:
    """The frame-target store of one shard's tracks (beat and downbeat, widened)."""
    input:
        annotations=shard_annotations,
        audio=shard_audio,  # read for the frame count (header only)
    output:
        f"{RESULTS}/features/targets/{{shard}}.h5",
    log:
        f"{LOGS}/features/targets_{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/targets/{{shard}}.tsv"
    conda:
        "../envs/features.yaml"
    params:
        members=shard_tracks_param,
        frames=frame_params(),
        targets=config["targets"],
    script:
        "../workflow_scripts/compute_targets.py"
