"""CPU discovery (affinity, cgroup v1/v2 quota) and the thread cap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from beatgrid import threads


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cgroup_v2_quota_of_the_process_cgroup(tmp_path):
    proc = write(tmp_path / "proc_cgroup", "0::/jobs/job7\n")
    write(tmp_path / "cg/jobs/job7/cpu.max", "150000 100000\n")
    write(tmp_path / "cg/cpu.max", "max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) == pytest.approx(1.5)


def test_cgroup_v2_takes_the_tightest_ancestor(tmp_path):
    proc = write(tmp_path / "proc_cgroup", "0::/jobs/job7\n")
    write(tmp_path / "cg/jobs/job7/cpu.max", "max 100000\n")
    write(tmp_path / "cg/jobs/cpu.max", "300000 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) == pytest.approx(3.0)


def test_cgroup_v1_quota(tmp_path):
    proc = write(tmp_path / "proc_cgroup", "4:memory:/x\n2:cpu,cpuacct:/slurm/job1\n")
    write(tmp_path / "cg/cpu,cpuacct/slurm/job1/cpu.cfs_quota_us", "200000\n")
    write(tmp_path / "cg/cpu,cpuacct/slurm/job1/cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) == pytest.approx(2.0)


def test_no_quota_or_unreadable_cgroup_means_no_limit(tmp_path):
    proc = write(tmp_path / "proc_cgroup", "2:cpu,cpuacct:/\n")
    write(tmp_path / "cg/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cg/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) is None
    assert threads.cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "missing") is None


def test_available_cpus_is_affinity_bounded_by_the_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.5)
    assert threads.available_cpus() == 3
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.available_cpus() == 16
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.2)
    assert threads.available_cpus() == 1


@pytest.mark.parametrize("requested, available, expected", [(8, 2, 2), (1, 2, 1), (None, 3, 3)])
def test_cap_threads_never_exceeds_the_available_cpus(monkeypatch, requested, available, expected):
    monkeypatch.setattr(threads, "available_cpus", lambda: available)
    limits = []
    monkeypatch.setattr("threadpoolctl.threadpool_limits", lambda n: limits.append(n))
    for name in threads.THREAD_ENV_VARS:
        monkeypatch.setenv(name, "64")
    before = torch.get_num_threads()
    try:
        assert threads.cap_threads(requested, torch=True) == expected
        assert torch.get_num_threads() == expected
        assert limits == [expected]
        assert all(os.environ[name] == str(expected) for name in threads.THREAD_ENV_VARS)
    finally:
        torch.set_num_threads(before)


def test_oversubscribed_jobs_wait_passively(monkeypatch):
    from beatgrid import threads

    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert not threads.wait_passively_if_oversubscribed(None)  # cluster: no core count
    assert not threads.wait_passively_if_oversubscribed(2)  # jobs never share a CPU
    assert "OMP_WAIT_POLICY" not in os.environ
    assert threads.wait_passively_if_oversubscribed(8)  # the README's --cores 8 on 2 CPUs
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice is kept
    assert not threads.wait_passively_if_oversubscribed(8)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
