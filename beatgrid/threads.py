"""How many CPUs this process may use, and compute threads capped to them.

A job that asks for more threads than it has CPUs runs slower, not faster: on a
2-CPU machine a CRNN epoch with 8 torch threads took 3x as long as with 2, an LTM
epoch 27x. Schedulers grant ``threads`` from ``--cores``, which users set freely, so
every computing entry point (workflow jobs, the CLI, benchmarks) calls
:func:`cap_threads` before it computes.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: Environment variables read by OpenMP, BLAS builds and numba when they start: they
#: bound libraries loaded after the cap, and child processes (DataLoader workers).
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller -> cgroup path of this process ('' for cgroup v2's unified hierarchy)."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


def _candidates(root: Path, cgroup_path: str, name: str) -> list[Path]:
    """The file in this process's cgroup and its ancestors, then at the mount root
    (inside a container the recorded path is often not visible under the mount)."""
    found = []
    path = Path(cgroup_path.lstrip("/"))
    while True:
        found.append(root / path / name)
        if path == path.parent:
            break
        path = path.parent
    return found


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs allowed by the cgroup CPU quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``),
    the tightest along the hierarchy; None when no quota applies or none can be read."""
    paths = _cgroup_paths(proc_cgroup)
    limits: list[float] = []
    if "" in paths:  # cgroup v2
        for file in _candidates(root, paths[""], "cpu.max"):
            try:
                quota, period = file.read_text().split()[:2]
            except (OSError, ValueError):
                continue
            if quota != "max" and float(period) > 0:
                limits.append(float(quota) / float(period))
    for controller in ("cpu", "cpuacct"):
        if controller not in paths:
            continue
        for mount in (root / "cpu,cpuacct", root / "cpu", root / "cpuacct,cpu"):
            for quota_file in _candidates(mount, paths[controller], "cpu.cfs_quota_us"):
                try:
                    quota = float(quota_file.read_text())
                    period = float((quota_file.parent / "cpu.cfs_period_us").read_text())
                except (OSError, ValueError):
                    continue
                if quota > 0 and period > 0:
                    limits.append(quota / period)
    return min(limits) if limits else None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, bounded by the cgroup CPU quota
    (rounded up: a quota of 1.5 CPUs keeps 2 threads busy part of the time)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def cap_threads(requested: int | None = None, *, torch: bool | None = None) -> int:
    """Limit compute threads to ``min(requested, available_cpus())`` and return that number.

    Sets the OpenMP/BLAS/numba environment variables (for libraries loaded later and child
    processes), limits the BLAS/OpenMP pools already loaded (threadpoolctl), and torch's
    intra-op and inter-op threads. ``torch``: True imports torch to cap it, False leaves it
    alone, None (default) caps it only if it is already imported.
    """
    available = available_cpus()
    n = max(1, min(requested or available, available))
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # optional: without it only the environment variables bound BLAS
        pass
    if torch or (torch is None and "torch" in sys.modules):
        import torch as _torch

        _torch.set_num_threads(n)
        try:
            _torch.set_num_interop_threads(n)
        except RuntimeError:  # only settable before the first inter-op parallel work
            pass
        log.info("compute threads: %d (requested %s, %d CPUs available); torch threads %d, interop %d; "
                 "OpenMP wait policy %s", n, requested, available, _torch.get_num_threads(),
                 _torch.get_num_interop_threads(), os.environ.get("OMP_WAIT_POLICY", "default"))
    else:
        log.info("compute threads: %d (requested %s, %d CPUs available)", n, requested, available)
    return n


def wait_passively_if_oversubscribed(granted_cores: int | None) -> bool:
    """Let OpenMP threads of child processes sleep, not spin, when jobs may share CPUs.

    A scheduler granted ``granted_cores`` (Snakemake's ``--cores``) above
    :func:`available_cpus` runs several multi-threaded jobs on the same CPUs; OpenMP threads
    that spin while they wait then starve each other (two 2-thread CRNN activation jobs on
    2 CPUs: > 300 s each against 3.7 s alone; with ``OMP_WAIT_POLICY=PASSIVE`` 5-8 s).
    Sets that variable (unless the user set it) for processes started later and returns
    whether it did; ``None`` (no core count, e.g. a cluster) changes nothing.
    """
    if granted_cores is None or granted_cores <= available_cpus() or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
