"""A real one-node Slurm cluster on localhost for the end-to-end tests (Debian's slurm-wlm + munge, run as root).

Everything lives in one state folder (config, munge key and socket, spool, logs, job history); outside it there is
only the symlink /etc/slurm/slurm.conf -> <state>/slurm.conf, because Snakemake's jobstep plugin drops SLURM_CONF from
the environment of the ``srun`` it runs inside each job, so that srun can only find the default path. Daemons are
started only when the folder's own are not already running, and ``running_cluster`` stops only those it started.
The symlink is held under an exclusive lock (``system_config_link``), so concurrent test sessions take turns and a
link left by a killed session is replaced. No accounting database: finished jobs are recorded by
``jobcomp/filetxt`` (one line per job) and stay visible to ``squeue --states=all`` for ``MinJobAge`` seconds.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
DEFAULT_STATE = Path(os.environ.get("CLIMS_SLURM_DIR", "/tmp/clims-slurm"))
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")  # where srun looks when SLURM_CONF is unset
LOCK_NAME = ".clims-test-cluster.lock"  # beside SYSTEM_CONF: serializes the test clusters' use of it
MIN_JOB_AGE_S = 3600  # finished jobs stay in squeue --states=all (and scontrol) this long


class SlurmUnavailable(RuntimeError):
    """Slurm is not installed and cannot be (not root, no apt-get): the tests skip with this message."""


@dataclass(frozen=True)
class SlurmCluster:
    """A running cluster: clients find it through ``SLURM_CONF`` (see ``env``)."""

    state: Path
    node: str
    cpus: int
    memory_mb: int

    @property
    def conf(self) -> Path:
        return self.state / "slurm.conf"

    @property
    def jobcomp(self) -> Path:
        return self.state / "jobcomp.log"

    def env(self) -> dict[str, str]:
        """The environment for sbatch/squeue/snakemake; sbatch --export=ALL carries it into the jobs."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 60) -> str:
        """Run a Slurm client command against this cluster; its stdout (raises on failure)."""
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout,
                                env=self.env())
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def node_state(self) -> str:
        return self.run("sinfo", "--noheader", "--Node", "--format=%T").strip()

    def queue_history(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers, finished ones included: id, name, state, comment, work dir."""
        out = self.run("squeue", "--states=all", "--noheader", "--format=%i|%j|%T|%k|%Z")
        keys = ("id", "name", "state", "comment", "workdir")
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()]

    def completed_jobs(self) -> list[dict[str, str]]:
        """The jobcomp/filetxt history: one ``Key=Value ...`` line per finished job, parsed into dicts."""
        if not self.jobcomp.exists():
            return []
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in self.jobcomp.read_text().splitlines() if line]


def install_if_missing() -> None:
    """apt-get install slurm-wlm and munge unless their daemons are already on PATH (needs root)."""
    if all(shutil.which(d) for d in (*DAEMONS, "mungekey", "sbatch")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlurmUnavailable("slurm-wlm/munge are not installed and cannot be (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    for attempt in (install, ["apt-get", "update", "-q"], install):
        result = subprocess.run(attempt, check=False, capture_output=True, text=True, env=env, timeout=600)
        if result.returncode == 0 and attempt is install:
            return
    raise RuntimeError(f"apt-get install {' '.join(PACKAGES)} failed: {result.stderr[-2000:]}")


def node_hardware() -> tuple[str, int, int]:
    """(node name, CPUs, RealMemory MB) as ``slurmd -C`` detects them, so the node never drains for 'low' hardware."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True, timeout=60).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    return fields["NodeName"], int(fields["CPUs"]), int(fields["RealMemory"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(state: Path, node: str, cpus: int, memory_mb: int) -> Path:
    """slurm.conf for one node that is also the controller; every path points into ``state``."""
    for folder in ("statesave", "spool"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    ctld_port, slurmd_port = _free_port(), _free_port()
    lines = [
        "ClusterName=clims-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        "SlurmUser=root",
        "AuthType=auth/munge",
        f"AuthInfo=socket={state / 'munge.socket'}",
        f"StateSaveLocation={state / 'statesave'}",
        f"SlurmdSpoolDir={state / 'spool'}",
        f"SlurmctldPidFile={state / 'slurmctld.pid'}",
        f"SlurmdPidFile={state / 'slurmd.pid'}",
        f"SlurmctldLogFile={state / 'slurmctld.log'}",
        f"SlurmdLogFile={state / 'slurmd.log'}",
        # No cgroups or systemd here: track processes by parentage, bind nothing.
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "MpiDefault=none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={state / 'jobcomp.log'}",
        f"MinJobAge={MIN_JOB_AGE_S}",
        # Cores and memory are consumable, so Slurm really checks each job's --cpus-per-task and --mem.
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "ReturnToService=2",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ]
    conf = state / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _alive_pid(pid_file: Path, name: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is ``name`` (not a reused pid), else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
        if Path(f"/proc/{pid}/comm").read_text().strip() != name:
            return None
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _wait(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def _start(command: list[str], pid_file: Path, log: Path) -> int:
    """Start a self-daemonizing daemon and return the pid it writes."""
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    _wait(lambda: _alive_pid(pid_file, command[0]) is not None, 30, f"{command[0]} to write {pid_file}", log)
    return _alive_pid(pid_file, command[0])  # type: ignore[return-value]


def start_cluster(state: Path = DEFAULT_STATE, timeout: float = 90) -> tuple[SlurmCluster, list[int]]:
    """Start munged, slurmctld and slurmd for ``state`` unless already running; wait for the node to be idle.

    Returns the cluster and the pids started by this call (empty when everything was running already).
    """
    install_if_missing()
    node, cpus, memory_mb = node_hardware()
    state.mkdir(parents=True, exist_ok=True)
    pid_files = {d: state / f"{d}.pid" for d in DAEMONS}
    running = {d: _alive_pid(f, d) for d, f in pid_files.items()}
    fresh = not all(running.values()) or not (state / "slurm.conf").exists()
    if fresh:
        # Any daemon missing: start afresh (new ports, fresh controller state) rather than mix generations.
        stop([pid for pid in running.values() if pid])
        write_config(state, node, cpus, memory_mb)
    cluster = SlurmCluster(state, node, cpus, memory_mb)
    started: list[int] = []
    try:
        if fresh:
            key = state / "munge.key"
            if not key.exists():
                subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
            # --force: munged refuses to run as root otherwise.
            started.append(_start(["munged", "--force", f"--socket={state / 'munge.socket'}", f"--key-file={key}",
                                   f"--pid-file={pid_files['munged']}", f"--log-file={state / 'munged.log'}",
                                   f"--seed-file={state / 'munged.seed'}"], pid_files["munged"], state / "munged.log"))
            # -c: forget jobs of an earlier controller that used this folder.
            started.append(_start(["slurmctld", "-c", "-f", str(cluster.conf)], pid_files["slurmctld"],
                                  state / "slurmctld.log"))
            started.append(_start(["slurmd", "-f", str(cluster.conf), "-N", node], pid_files["slurmd"],
                                  state / "slurmd.log"))

        def idle() -> bool:
            try:
                return cluster.node_state() in ("idle", "mixed", "allocated")
            except (RuntimeError, subprocess.TimeoutExpired):
                return False

        _wait(idle, timeout, f"node {node} to come up (sinfo)", state / "slurmctld.log")
    except BaseException:
        stop(started)
        raise
    return cluster, started


def stop(pids: list[int], timeout: float = 30) -> None:
    """SIGTERM the given daemons (slurmd before slurmctld before munged: reverse start order) and wait for them."""
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)


@contextmanager
def system_config_link(conf: Path, link: Path = SYSTEM_CONF, timeout: float = 1800) -> Iterator[None]:
    """Hold ``link`` (/etc/slurm/slurm.conf) -> ``conf`` for the duration, one test cluster at a time.

    An exclusive ``flock`` on a file beside the link serializes test sessions on one machine (a second waits up to
    ``timeout`` s for the first to finish). The kernel drops the lock when its holder dies, so a link found while
    holding the lock is a leftover of a killed session and is replaced; a real file (a system Slurm) never is.
    """
    lock_file = link.with_name(LOCK_NAME)
    if link.exists() and not link.is_symlink():
        raise RuntimeError(f"{link} exists (a system Slurm?); not replacing it with the test cluster's config")
    link.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test cluster held {lock_file} for {timeout:.0f} s") from None
                time.sleep(1)
        try:
            link.unlink(missing_ok=True)
            link.symlink_to(conf)
            yield
        finally:
            if link.is_symlink() and link.resolve() == conf.resolve():
                link.unlink()
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def running_cluster(state: Path = DEFAULT_STATE) -> Iterator[SlurmCluster]:
    """A cluster whose node is up; daemons this started are stopped on exit, ones found running are left alone."""
    cluster, started = start_cluster(state)
    try:
        with system_config_link(cluster.conf):
            yield cluster
    finally:
        stop(started)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A one-node cluster of this test session (own folder, ports and munge), up once ``sinfo`` shows the node idle.

    Skips where Slurm is missing and cannot be installed; any other failure to start is an error.
    """
    try:
        install_if_missing()
    except SlurmUnavailable as reason:
        pytest.skip(str(reason))
    with running_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
