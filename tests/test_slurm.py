"""The SLURM profile on a real (one-node) SLURM cluster: GPU mapping, retries, the tiny run.

The cluster is started by the `slurm_cluster` fixture (tests/slurm_cluster.py) and these
tests skip, naming what is missing, where it cannot run. What each job was given is read
back from SLURM's own records (`scontrol show job`; `MinJobAge` keeps finished jobs), not
from the jobs' logs. The cluster's node has every CPU of this machine, so runs pass
`--max-threads <nproc>`: a site would set its own in the profile.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.slurm_cluster import SlurmCluster, parse_scontrol_record, slurm_cluster  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
GPU_RULES = ("train_crnn", "train_ltm")

PROBE_SNAKEFILE = """
rule all:
    input: "gpu_probe.txt", "flaky.txt"

# Named like the workflow's training rule, so the profile's set-resources apply to it.
rule train_crnn:
    output: "gpu_probe.txt"
    resources: gpu=1
    shell: "echo ${{CUDA_VISIBLE_DEVICES:-unset}} > {output}"

# Fails on its first attempt; the profile's retry must come back with more memory and time.
rule flaky:
    output: "flaky.txt"
    params: marker="flaky.attempted"
    shell: "if [ ! -e {params.marker} ]; then touch {params.marker}; exit 1; fi; echo {resources.mem_mb} > {output}"
"""


def run_snakemake(cluster: SlurmCluster, workdir: Path, snakefile: Path, *args: str, timeout_s: float) -> None:
    """`snakemake --profile profiles/slurm` in `workdir`; fails the test with its log tail."""
    cmd = [
        sys.executable, "-m", "snakemake",
        "-s", str(snakefile),
        "-d", str(workdir),
        "--profile", str(PROFILE),
        "--max-threads", str(cluster.cpus),
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-8000:]}",
            pytrace=False,
        )


def jobs_of_rule(cluster: SlurmCluster, workdir: Path, rule: str) -> list[dict[str, str]]:
    """SLURM's records of the jobs the plugin submitted for `rule` from `workdir`, oldest first."""
    comment = f"rule_{rule}"
    jobs = [
        job
        for job in cluster.jobs()
        if Path(job.get("WorkDir", "/nonexistent")).resolve() == workdir.resolve()
        and (job.get("Comment") == comment or job.get("Comment", "").startswith(f"{comment}_wildcards_"))
    ]
    return sorted(jobs, key=lambda job: int(job["JobId"]))


def profile_resource(name: str, attempt: int) -> int:
    """A default resource of the SLURM profile (an expression of `attempt`) at `attempt`."""
    expression = yaml.safe_load((PROFILE / "config.yaml").read_text())["default-resources"][name]
    return int(eval(str(expression), {"__builtins__": {}}, {"attempt": attempt}))


def memory_mb(job: dict[str, str]) -> int:
    value = job["MinMemoryNode"]
    units = {"M": 1, "G": 1024, "T": 1024 * 1024}
    return int(float(value[:-1]) * units[value[-1]]) if value[-1] in units else int(value)


def time_limit_min(job: dict[str, str]) -> int:
    """`TimeLimit` ([days-]hours:minutes:seconds) in minutes."""
    days, _, clock = job["TimeLimit"].rpartition("-")
    hours, minutes, _ = (int(part) for part in clock.split(":"))
    return int(days or 0) * 24 * 60 + hours * 60 + minutes


def has_gpu(job: dict[str, str]) -> bool:
    return "gpu" in job.get("TresPerJob", "") or "gres/gpu" in job.get("AllocTRES", "")


def test_parse_scontrol_record_keeps_values_with_spaces():
    line = "JobId=7 JobName=a b GroupId=root(0) MCS_label=N/A Partition=gpu TresPerJob=gres:gpu:1 Comment=rule_x"
    record = parse_scontrol_record(line)
    assert record["JobName"] == "a b"
    assert record["MCS_label"] == "N/A"
    assert record["TresPerJob"] == "gres:gpu:1"
    assert record["Comment"] == "rule_x"


@pytest.fixture(scope="module")
def probe_run(slurm_cluster, tmp_path_factory) -> Path:  # noqa: F811
    """A throwaway two-rule workflow run through the profile: a GPU rule and a flaky rule."""
    workdir = tmp_path_factory.mktemp("slurm_probe")
    (workdir / "Snakefile").write_text(PROBE_SNAKEFILE)
    run_snakemake(slurm_cluster, workdir, workdir / "Snakefile", timeout_s=300)
    return workdir


@pytest.mark.slurm
def test_gpu_rule_runs_on_gpu_partition_with_a_gpu(slurm_cluster, probe_run):  # noqa: F811
    (job,) = jobs_of_rule(slurm_cluster, probe_run, "train_crnn")
    assert job["JobState"] == "COMPLETED"
    assert job["Partition"] == "gpu"
    assert has_gpu(job), job
    # SLURM bound the (stand-in) GPU into the job's environment.
    assert (probe_run / "gpu_probe.txt").read_text().strip() == "0"


@pytest.mark.slurm
def test_failed_job_is_retried_with_more_memory_and_time(slurm_cluster, probe_run):  # noqa: F811
    first, second = jobs_of_rule(slurm_cluster, probe_run, "flaky")
    assert (first["JobState"], second["JobState"]) == ("FAILED", "COMPLETED")
    assert first["Partition"] == second["Partition"] == "main"
    assert not has_gpu(first)
    assert [memory_mb(first), memory_mb(second)] == [profile_resource("mem_mb", 1), profile_resource("mem_mb", 2)]
    assert [time_limit_min(first), time_limit_min(second)] == [
        profile_resource("runtime", 1),
        profile_resource("runtime", 2),
    ]
    assert memory_mb(second) > memory_mb(first)
    assert time_limit_min(second) > time_limit_min(first)
    # The job itself saw the second attempt's memory.
    assert int((probe_run / "flaky.txt").read_text()) == memory_mb(second)


@pytest.mark.slurm
@pytest.mark.workflow
@pytest.mark.xfail(
    reason="outside tests/: rules/crnn.smk and rules/ltm.smk read workflow.cores in `threads:`, which "
    "fails without --cores on SLURM (use `threads: 8`); workflow_scripts/evaluate.py and report.py "
    "and beatgrid.crnn_training do not exist yet. Remove this mark when they land.",
    strict=False,
)
def test_tiny_workflow_completes_on_slurm_with_gpus_for_training(slurm_cluster, tmp_path):  # noqa: F811
    run_snakemake(
        slurm_cluster, tmp_path, REPO / "Snakefile", "--configfile", str(TINY), timeout_s=1500
    )
    for output in ("results/report/index.html", "results/evaluation/summary.csv", "results/evaluation/summary.md"):
        assert (tmp_path / output).stat().st_size > 0, output

    jobs = {
        rule: jobs_of_rule(slurm_cluster, tmp_path, rule)
        for rule in ("train_crnn", "train_ltm", "mels", "index", "evaluate")
    }
    for rule in GPU_RULES:
        assert jobs[rule], f"no SLURM job of {rule}"
        for job in jobs[rule]:
            assert job["JobState"] == "COMPLETED", job
            assert job["Partition"] == "gpu", job
            assert has_gpu(job), job
    # Everything else runs on the default partition without a GPU.
    for rule in ("mels", "index", "evaluate"):
        assert jobs[rule], f"no SLURM job of {rule}"
        for job in jobs[rule]:
            assert job["Partition"] == "main" and not has_gpu(job), job
