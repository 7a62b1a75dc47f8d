# Features: one job per shard writes the log-mel store, another the frame targets.
# Targets depend only on the settings that fix frame times (sr, hop_length), so changing
# n_mels recomputes mels but not targets.


rule mels:
    """The log-mel store of one shard's tracks (their audio: `params.audio`)."""
    input:
        # ancient: the index's shard list is read in `params`; a re-indexed shard re-runs
        # only when its members or the versions of their files change
        index=ancient(TRACKS_CSV),
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
        audio=shard_audio_version,
        mel=mel_params(),
    script:
        "../workflow_scripts/compute_mels.py"


rule targets:
    """The frame-target store of one shard's tracks (beat and downbeat, widened), from
    their annotations and the audio's frame count (header only)."""
    input:
        index=ancient(TRACKS_CSV),  # as rule mels
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
        annotations=shard_annotations_version,
        audio=shard_audio_version,
        frames=frame_params(),
        targets=config["targets"],
    script:
        "../workflow_scripts/compute_targets.py"
