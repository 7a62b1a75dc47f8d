"""The SLURM profile: its plan (no cluster needed), then on a real one-node SLURM cluster
the GPU mapping, the retry with more memory and time, and the tiny workflow end to end.

The cluster is started by the `slurm_cluster` fixture (tests/slurm_cluster.py); the tests
that need it skip, naming what is missing, where it cannot run. What each job was given is read
back from SLURM's own records (`scontrol show job`; `MinJobAge` keeps finished jobs), not
from the jobs' logs. The cluster's node has every CPU of this machine, so runs pass
`--max-threads <nproc>`: a site would set its own in the profile.
"""

from __future__ import annotations

import re
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


def planned_resources(text: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job in `snakemake -n` output, in the order printed."""
    jobs = []
    for match in re.finditer(r"^(?:local)?(?:rule|checkpoint) (\w+):\n(?:    .*\n)*?    resources: (.*)$", text, re.M):
        resources = dict(item.split("=", 1) for item in match.group(2).split(", ") if "=" in item)
        jobs.append((match.group(1), resources))
    return jobs


def test_slurm_profile_plans_the_workflow_with_gpu_rules_on_the_gpu_partition(tmp_path):
    """A dry run through the profile (no cluster needed): every job gets the profile's
    resources, and exactly the training rules get a GPU on the GPU partition."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    cmd = [
        sys.executable, "-m", "snakemake", "-n",
        "-s", str(REPO / "Snakefile"),
        "-d", str(tmp_path),
        "--profile", str(PROFILE),
        "--configfile", str(TINY),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    jobs = planned_resources(result.stdout + result.stderr)
    assert {rule for rule, _ in jobs} >= {"index", *GPU_RULES}
    for rule, resources in jobs:
        if rule in GPU_RULES:
            assert resources.get("gpu") == "1" and resources["slurm_partition"] == "gpu", (rule, resources)
        else:
            assert "gpu" not in resources and resources["slurm_partition"] == "main", (rule, resources)
        assert int(resources["mem_mb"]) >= profile_resource("mem_mb", 1), (rule, resources)
        assert int(resources["runtime"]) >= profile_resource("runtime", 1), (rule, resources)


def test_parse_scontrol_record_keeps_values_with_spaces():
    line = "JobId=7 JobName=a b GroupId=root(0) MCS_label=N/A Partition=gpu TresPerJob=gres:gpu:1 Comment=rule_x"
    record = parse_scontrol_record(line)
    assert record["JobName"] == "a b"
    assert record["MCS_label"] == "N/A"
    assert record["TresPerJob"] == "gres:gpu:1"
    assert record["Comment"] == "rule_x"


@pytest.mark.slurm
def test_profile_gives_gpu_rules_a_gpu_and_retries_with_more_memory_and_time(slurm_cluster, tmp_path):  # noqa: F811
    """One throwaway two-rule workflow through the profile (one run: SLURM polling is slow)."""
    (tmp_path / "Snakefile").write_text(PROBE_SNAKEFILE)
    run_snakemake(slurm_cluster, tmp_path, tmp_path / "Snakefile", timeout_s=300)

    # The GPU rule: on the gpu partition, with a GPU that SLURM bound into its environment.
    (gpu_job,) = jobs_of_rule(slurm_cluster, tmp_path, "train_crnn")
    assert gpu_job["JobState"] == "COMPLETED"
    assert gpu_job["Partition"] == "gpu"
    assert has_gpu(gpu_job), gpu_job
    assert (tmp_path / "gpu_probe.txt").read_text().strip() == "0"

    # The flaky rule: default partition, no GPU, and the retry asks for the profile's
    # second-attempt memory and time.
    first, second = jobs_of_rule(slurm_cluster, tmp_path, "flaky")
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
    assert int((tmp_path / "flaky.txt").read_text()) == memory_mb(second)


@pytest.mark.slurm
@pytest.mark.workflow
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
