"""Fixtures for tests against the real local Slurm cluster (`scripts/dev-cluster`).

`dev_cluster` (session scope) brings the cluster up with 3 nodes, or reuses a running one,
and hands tests its fault handles. It never calls `down`: whoever runs the suite does
(`scripts/dev-cluster up; pytest -m slurm ...; scripts/dev-cluster down`). After every test
that used it, the cluster is put back to full health (jobs the test submitted through
`sbatch()` cancelled, nodes revived, links healed, nodes resumed), so tests are independent.

The fault tests assume they have the cluster to themselves; to run two suites at once, give
each its own `OLMOCTL_DEV_CLUSTER_DIR` (each folder gets its own namespaces and daemons).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "dev-cluster"
CLUSTER_DIR = Path(os.environ.get("OLMOCTL_DEV_CLUSTER_DIR") or "/tmp/olmoctl-dev-cluster")
NODES = 3
TERMINAL = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slurm: needs the local real Slurm cluster (scripts/dev-cluster)"
    )
    config.addinivalue_line(
        "markers", "burnin: launches keep the profile's burn-in (others turn it off)"
    )


# Every wait and subprocess timeout in tests/integration is a hang guard, never a speed test:
# on a loaded 2-core machine a correct program runs many times slower than alone, so each is
# far above (>= 10x) the normal time. Timing that is itself the property under test (how fast
# Slurm notices a dead node) is asserted separately, with its own named bound.
HANG_GUARD_S = 900.0


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `predicate` until it returns something truthy (returned) or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})"
            )
        time.sleep(interval)


class DevCluster:
    """Handles on the running dev cluster: Slurm clients plus the fault injections."""

    def __init__(self, nodes: list[str]) -> None:
        self.dir = CLUSTER_DIR
        self.nodes = nodes
        self.env = dict(os.environ)
        self.env.update(
            OLMOCTL_DEV_CLUSTER_DIR=str(self.dir),
            SLURM_CONF=str(self.dir / "etc" / "slurm.conf"),
            PATH=f"{self.dir / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        )
        self.submitted: list[int] = []
        self.wait_for = wait_for

    # -- commands ---------------------------------------------------------------------------
    def run(
        self,
        args: Sequence[str] | str,
        check: bool = False,
        timeout: float = HANG_GUARD_S,
        **kw: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (list, or a string split like a shell would) with the cluster env."""
        argv = shlex.split(args) if isinstance(args, str) else list(args)
        p = subprocess.run(
            argv, env=kw.pop("env", self.env), capture_output=True, text=True, timeout=timeout, **kw
        )
        if check and p.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
        return p

    def script(self, *args: str, timeout: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
        """Run `scripts/dev-cluster ARGS`; fail the test with its output if it fails."""
        return self.run([str(SCRIPT), *args], check=True, timeout=timeout)

    def kill_node(self, node: str) -> None:
        self.script("kill-node", node)

    def revive_node(self, node: str) -> None:
        self.script("revive-node", node)

    def partition_node(self, node: str) -> None:
        self.script("partition-node", node)

    def heal_node(self, node: str) -> None:
        self.script("heal-node", node)

    def restart_controller(self) -> None:
        self.script("restart-controller")

    def drain(self, node: str, reason: str = "test drain") -> None:
        self.script("drain", node, "--reason", reason)

    def undrain(self, node: str) -> None:
        self.script("undrain", node)

    def restore(self) -> None:
        """Every slurmd running, every link up, no node down or drained."""
        self.script("restore")

    # -- Slurm queries ----------------------------------------------------------------------
    def sbatch(self, *args: str) -> int:
        """Submit (`sbatch --parsable ARGS`), remember the job for clean-up, return its id."""
        p = self.run(["sbatch", "--parsable", *args], check=True)
        job_id = int(p.stdout.strip().split(";")[0])
        self.submitted.append(job_id)
        return job_id

    def squeue_state(self, job_id: int) -> str:
        """State as the controller sees it ('' once the job left the queue)."""
        p = self.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"])
        return p.stdout.strip() if p.returncode == 0 else ""

    def sacct_state(self, job_id: int) -> str:
        """State of the job's allocation in accounting, e.g. COMPLETED ('' if not there yet)."""
        p = self.run(["sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "State"])
        lines = [x.strip() for x in p.stdout.splitlines() if x.strip()]
        return lines[-1].split()[0] if lines else ""  # "CANCELLED by 0" -> CANCELLED

    def sacct(
        self,
        job_id: int,
        fields: str = "JobID,State,NodeList,ExitCode",
        allocation_only: bool = True,
    ) -> list[dict[str, str]]:
        args = ["sacct", "-n", "-P", "-j", str(job_id), "-o", fields]
        p = self.run(args + (["-X"] if allocation_only else []), check=True)
        names = fields.split(",")
        return [
            dict(zip(names, line.split("|"), strict=False))
            for line in p.stdout.splitlines()
            if line
        ]

    def wait_job(
        self, job_id: int, timeout: float = HANG_GUARD_S, states: set[str] | None = None
    ) -> str:
        """Wait until sacct reports a final state (or one of `states`); return it."""
        wanted = states or TERMINAL

        def done() -> str:
            state = self.sacct_state(job_id)
            return state if state in wanted else ""

        return wait_for(done, timeout, f"job {job_id} to reach {sorted(wanted)}")

    def wait_running(self, job_id: int, timeout: float = HANG_GUARD_S) -> None:
        wait_for(lambda: self.squeue_state(job_id) == "RUNNING", timeout, f"job {job_id} to run")

    def node_state(self, node: str) -> str:
        """Long node state as scontrol prints it, e.g. IDLE, MIXED, DOWN+NOT_RESPONDING."""
        p = self.run(["scontrol", "-o", "show", "node", node], check=True)
        m = re.search(r"\bState=(\S+)", p.stdout)
        return m.group(1) if m else ""

    def job_field(self, job_id: int, field: str) -> str:
        p = self.run(["scontrol", "-o", "show", "job", str(job_id)], check=True)
        m = re.search(rf"\b{field}=(\S*)", p.stdout)
        return m.group(1) if m else ""

    def cancel_submitted(self) -> None:
        """Cancel what this session submitted and is still queued or running."""
        if not self.submitted:
            return
        ids = [str(j) for j in self.submitted]
        self.run(["scancel", *ids])
        self.submitted.clear()
        wait_for(
            lambda: not self.run(["squeue", "-h", "-j", ",".join(ids)]).stdout.strip(),
            60,
            f"jobs {', '.join(ids)} to leave the queue",
        )


@pytest.fixture(scope="session")
def dev_cluster() -> Iterator[DevCluster]:
    if os.geteuid() != 0:
        pytest.skip("the dev Slurm cluster needs root (network namespaces, daemons)")
    p = subprocess.run(
        [str(SCRIPT), "up", "--nodes", str(NODES)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    nodes = NODES
    if p.returncode == 2:  # already running with another node count: reuse it if big enough
        nodes = json.loads((CLUSTER_DIR / "cluster.json").read_text())["nodes"]
    if p.returncode not in (0, 2) or nodes < NODES:
        pytest.fail(f"scripts/dev-cluster up failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    cluster = DevCluster([f"node{i}" for i in range(1, nodes + 1)])
    cluster.restore()
    yield cluster
    cluster.cancel_submitted()
    # no `down` here: the runner that started the cluster stops it


@pytest.fixture(autouse=True)
def _dev_cluster_back_to_health(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the cluster: cancel its jobs, revive/heal/resume its nodes."""
    if "dev_cluster" not in request.fixturenames:
        yield
        return
    cluster: DevCluster = request.getfixturevalue("dev_cluster")
    yield
    cluster.cancel_submitted()
    cluster.restore()


VENV_BIN = str(Path(sys.executable).parent)


class Olmoctl:
    """`olmoctl ARGS` as a user runs it: a subprocess with the cluster's Slurm clients and
    the venv on PATH, a private state dir, and runs under a private runs root (self.root)."""

    # The burn-in adds ~10 s before every dev job's first step; tests of something else run
    # without it (tests/integration/test_burnin.py and the tests marked `burnin` keep it).
    BURNIN_OFF = ("-o", "cluster.burnin.enabled=false")

    def __init__(self, cluster: DevCluster, tmp: Path, burnin: bool = False) -> None:
        self.cluster = cluster
        self.burnin = burnin
        self.env = dict(cluster.env)
        self.env["PATH"] = f"{cluster.dir / 'bin'}:{VENV_BIN}:{os.environ['PATH']}"
        self.env["OLMOCTL_STATE_DIR"] = str(tmp / "state")
        self.runs = tmp / "runs"
        self.root = f"cluster.runs_root={self.runs}"

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = HANG_GUARD_S
    ) -> subprocess.CompletedProcess[str]:
        # --from (a recorded run) and --continue (a recorded sweep) take no overrides.
        chosen = any("cluster.burnin.enabled" in a for a in args)
        chosen = chosen or "--from" in args or "--continue" in args
        if not self.burnin and not chosen and args[:1] in (("launch",), ("sweep",), ("render",)):
            args = (*args, *self.BURNIN_OFF)
        return subprocess.run(
            [VENV_BIN + "/olmoctl", *args], env=env or self.env, capture_output=True,
            text=True, timeout=timeout, cwd=REPO,
        )  # fmt: skip

    def json(self, *args: str) -> Any:
        res = self(*args, "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def run_state(self, name: str) -> dict:
        return self.json("status", name)


@pytest.fixture
def olmoctl(dev_cluster: DevCluster, tmp_path: Path, request: pytest.FixtureRequest) -> Olmoctl:
    burnin = request.node.get_closest_marker("burnin") is not None
    return Olmoctl(dev_cluster, tmp_path, burnin=burnin)
