"""A one-node SLURM cluster on this machine, for the cluster integration tests.

`SlurmCluster` writes ``/etc/slurm/slurm.conf`` and ``gres.conf`` (one node with every CPU
of the machine and one stand-in GPU, partitions ``main`` (default) and ``gpu``), starts
``munged``, ``slurmctld -D`` and ``slurmd -D`` in their own sessions, waits until the node
is idle, and on exit cancels its jobs, stops the daemons by the PIDs in their pid files
and restores the configuration that was there before. See
``../shared/notes/slurm-one-node.md`` for why each setting is what it is.

Several pytest processes (``pytest -n 2``, or two sessions at once) share one cluster:
users register under a file lock, and the last one to leave stops it. The
``slurm_cluster`` fixture skips, naming what is missing, when the machine cannot host it.

Usage in a test module::

    from tests.slurm_cluster import slurm_cluster  # noqa: F401
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_HINT = "apt-get install -y slurmctld slurmd slurm-client munge"
CONF_DIR = Path("/etc/slurm")
STATE_DIR = Path("/run/beatgrid-slurm")
MUNGE_PID_FILE = Path("/run/munge/munged.pid")
MUNGE_KEY = Path("/etc/munge/munge.key")
MARKER = "# Written by beatgrid tests/slurm_cluster.py for a one-node test cluster."
REQUIRED_PROGRAMS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol", "scancel")
# Advertised, not enforced (CR_Core does not treat memory as consumable): the production
# profile's requests (8 GB, doubled on the retry) must schedule on small CI machines too.
ADVERTISED_MEMORY_MB = 32768


def missing_requirements() -> list[str]:
    """What this machine lacks to host the test cluster; empty when it can."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the daemons and /etc/slurm need it)")
    programs = [p for p in REQUIRED_PROGRAMS if shutil.which(p, path=_sbin_path()) is None]
    if programs:
        missing.append(f"the programs {', '.join(programs)} ({INSTALL_HINT})")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        missing.append("snakemake-executor-plugin-slurm (pip install -e '.[slurm]')")
    return missing


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _program(name: str) -> str:
    path = shutil.which(name, path=_sbin_path())
    if path is None:
        raise RuntimeError(f"{name} is not installed ({INSTALL_HINT})")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _run(args: list[str], timeout_s: float = 30.0) -> str:
    """Run a Slurm client command; raise with its stderr when it fails."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


_SCONTROL_KEY = re.compile(r"[A-Z][A-Za-z0-9_/:]*")


def parse_scontrol_record(line: str) -> dict[str, str]:
    """`scontrol show ... -o` output (one record per line) as a dict of its `Key=Value` fields.

    Values may contain spaces only in the last fields (e.g. ``Comment``); a token without
    ``=`` is appended to the previous value.
    """
    record: dict[str, str] = {}
    key = None
    for token in line.split():
        name, sep, value = token.partition("=")
        if sep and _SCONTROL_KEY.fullmatch(name):
            key = name
            record[key] = value
        elif key is not None:
            record[key] += " " + token
    return record


class SlurmCluster:
    """A one-node SLURM cluster (node = this host) for the duration of a ``with`` block.

    Attributes:
        node: the node name (``hostname -s``).
        cpus: CPUs the node offers (all of this machine's).
        state_dir: where pid files, daemon logs and spool directories live.
    """

    def __init__(self, state_dir: Path = STATE_DIR, startup_timeout_s: float = 60.0) -> None:
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.state_dir = state_dir
        self.startup_timeout_s = startup_timeout_s
        self._lock_file = None
        self._processes: dict[int, subprocess.Popen] = {}

    # -- sharing between processes ------------------------------------------------------

    @property
    def _users_file(self) -> Path:
        return self.state_dir / "users.json"

    def _lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.state_dir / "lock", "w")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)

    def _unlock(self) -> None:
        assert self._lock_file is not None
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()
        self._lock_file = None

    def _live_users(self) -> list[int]:
        try:
            users = json.loads(self._users_file.read_text())
        except (OSError, ValueError):
            return []
        return [pid for pid in users if _pid_alive(pid)]

    def _write_users(self, users: list[int]) -> None:
        self._users_file.write_text(json.dumps(users))

    def __enter__(self) -> SlurmCluster:
        self._lock()
        try:
            users = self._live_users()
            if not users or not self.running():
                # Nobody alive uses it: whatever is left over is stale.
                self._stop_daemons()
                self._start()
                users = []
            self._write_users(users + [os.getpid()])
        except BaseException:
            self._unlock()
            raise
        self._unlock()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._lock()
        try:
            users = [pid for pid in self._live_users() if pid != os.getpid()]
            self._write_users(users)
            if not users:
                self._stop_daemons()
        finally:
            self._unlock()

    # -- configuration ------------------------------------------------------------------

    def slurm_conf(self) -> str:
        """The text of ``slurm.conf`` for this host."""
        state = self.state_dir
        return "\n".join(
            [
                MARKER,
                "ClusterName=beatgrid-test",
                f"SlurmctldHost={self.node}(127.0.0.1)",
                "SlurmUser=root",
                "AuthType=auth/munge",
                f"StateSaveLocation={state}/slurmctld",
                f"SlurmdSpoolDir={state}/slurmd",
                f"SlurmctldPidFile={state}/slurmctld.pid",
                f"SlurmdPidFile={state}/slurmd.pid",
                f"SlurmctldLogFile={state}/slurmctld.log",
                f"SlurmdLogFile={state}/slurmd.log",
                "SlurmctldDebug=info",
                "SlurmdDebug=info",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "MailProg=/bin/true",
                "ReturnToService=2",
                # Finished jobs stay visible to squeue/scontrol (the profile polls squeue,
                # the tests read allocations back). An hour: on a loaded machine the tiny run
                # took 18 min and the training jobs' records had expired after 10.
                "MinJobAge=3600",
                "SchedulerParameters=sched_interval=2",
                "GresTypes=gpu",
                # The node's memory is advertised, not measured (see ADVERTISED_MEMORY_MB).
                "SlurmdParameters=config_overrides",
                f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                f"RealMemory={ADVERTISED_MEMORY_MB} Gres=gpu:1 State=UNKNOWN",
                f"PartitionName=main Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                f"PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def gres_conf(self) -> str:
        """One stand-in GPU: jobs that ask for it get ``CUDA_VISIBLE_DEVICES=0``."""
        return f"{MARKER}\nNodeName={self.node} Name=gpu File=/dev/null\n"

    def _write_config(self) -> None:
        backup = self.state_dir / "previous-config"
        backup.mkdir(parents=True, exist_ok=True)
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in (("slurm.conf", self.slurm_conf()), ("gres.conf", self.gres_conf())):
            target = CONF_DIR / name
            if target.exists() and not target.read_text().startswith(MARKER):
                shutil.copy2(target, backup / name)
            target.write_text(text)

    def _restore_config(self) -> None:
        backup = self.state_dir / "previous-config"
        for name in ("slurm.conf", "gres.conf"):
            target = CONF_DIR / name
            if (backup / name).exists():
                shutil.move(backup / name, target)
            elif target.exists() and target.read_text().startswith(MARKER):
                target.unlink()

    # -- daemons --------------------------------------------------------------------------

    def _pid_files(self) -> dict[str, Path]:
        return {
            "slurmd": self.state_dir / "slurmd.pid",
            "slurmctld": self.state_dir / "slurmctld.pid",
        }

    def running(self) -> bool:
        """Whether both Slurm daemons of this cluster are alive."""
        pids = [_read_pid(path) for path in self._pid_files().values()]
        return all(pid is not None and _pid_alive(pid) for pid in pids)

    def _start(self) -> None:
        for sub in ("slurmctld", "slurmd"):
            path = self.state_dir / sub
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        for log in ("slurmctld.log", "slurmd.log"):
            (self.state_dir / log).unlink(missing_ok=True)
        self._write_config()
        self._start_munge()
        self._spawn([_program("slurmctld"), "-D", "-c", "-i"], "slurmctld")
        self._spawn([_program("slurmd"), "-D"], "slurmd")
        try:
            self._wait_idle()
        except BaseException:
            self._stop_daemons()
            raise

    def _start_munge(self) -> None:
        pid = _read_pid(MUNGE_PID_FILE)
        if pid is not None and _pid_alive(pid):
            return  # a munged is already serving the default socket; use it, leave it running
        if not MUNGE_KEY.exists():
            raise RuntimeError(f"{MUNGE_KEY} is missing; reinstall munge ({INSTALL_HINT}) or run mungekey --create")
        Path("/run/munge").mkdir(exist_ok=True)
        shutil.chown("/run/munge", user="munge", group="munge")
        subprocess.run(["runuser", "-u", "munge", "--", _program("munged")], check=True, timeout=30)
        (self.state_dir / "munged.started").write_text("started by beatgrid tests\n")
        deadline = time.monotonic() + 10
        while _read_pid(MUNGE_PID_FILE) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"munged wrote no pid file {MUNGE_PID_FILE} within 10 s")
            time.sleep(0.1)

    def _spawn(self, args: list[str], name: str) -> None:
        log = open(self.state_dir / f"{name}.stdout", "w")
        # start_new_session: the daemon runs in its own session (setsid), so a Ctrl-C
        # of pytest reaches the fixture's teardown, which stops it by PID.
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._processes[process.pid] = process
        log.close()

    def node_state(self) -> str:
        """The node's state as `sinfo` reports it (``idle``, ``mix``, ``drain`` ...)."""
        return _run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], timeout_s=10).strip().split("\n")[0]

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        state = "no answer"
        while time.monotonic() < deadline:
            try:
                state = self.node_state()
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                state = str(error)
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"SLURM node {self.node} is not idle after {self.startup_timeout_s:.0f} s "
            f"(last sinfo state: {state!r}).\n"
            f"slurmctld log:\n{self._log_tail('slurmctld')}\nslurmd log:\n{self._log_tail('slurmd')}"
        )

    def _log_tail(self, name: str, lines: int = 15) -> str:
        texts = []
        for suffix in ("log", "stdout"):
            path = self.state_dir / f"{name}.{suffix}"
            if path.exists():
                texts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(texts) or "(empty)"

    def _stop_daemons(self) -> None:
        """Cancel every job, stop slurmd, slurmctld and (if we started it) munged by PID."""
        if self.running():
            self._cancel_jobs()
        for name, path in self._pid_files().items():
            pid = _read_pid(path)
            _stop_pid(pid, name)
            if pid in self._processes:
                self._processes.pop(pid).wait(timeout=5)  # reap our own child
            path.unlink(missing_ok=True)
        started_munge = self.state_dir / "munged.started"
        if started_munge.exists():
            _stop_pid(_read_pid(MUNGE_PID_FILE), "munged")
            started_munge.unlink()
        self._restore_config()

    def _cancel_jobs(self, timeout_s: float = 15.0) -> None:
        """Cancel pending and running jobs and wait for them to end (their slurmstepd too)."""
        try:
            active = _run(["squeue", "-h", "-o", "%i", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING"]).split()
            if active:
                _run(["scancel", *active])
            deadline = time.monotonic() + timeout_s
            while active and time.monotonic() < deadline:
                time.sleep(0.5)
                active = _run(["squeue", "-h", "-o", "%i", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING"]).split()
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # the daemons are stopped next regardless

    # -- job records ----------------------------------------------------------------------

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still holds (finished ones for `MinJobAge`), as dicts of the
        fields of `scontrol show job -o` (`JobId`, `Partition`, `Comment`, `AllocTRES`...)."""
        out = _run(["scontrol", "show", "job", "-o"], timeout_s=10)
        return [parse_scontrol_record(line) for line in out.splitlines() if line.startswith("JobId=")]


def _stop_pid(pid: int | None, name: str, timeout_s: float = 15.0) -> None:
    if pid is None or not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running one-node SLURM cluster; skips with what is missing where there can be none."""
    missing = missing_requirements()
    if missing:
        pytest.skip("the SLURM cluster tests need " + "; ".join(missing))
    with SlurmCluster() as cluster:
        yield cluster
