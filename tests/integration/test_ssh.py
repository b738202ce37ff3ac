"""A remote cluster over SSH against a real sshd (Debian's openssh-server on 127.0.0.1) in
front of the real local Slurm: launch, status, logs -f, cancel, resume through it; host keys
checked; a stopped sshd; one SSH connection per olmoctl command (counted in sshd's log).

The local olmoctl runs WITHOUT any Slurm client on its PATH (no SLURM_CONF either): all it
knows of the cluster comes through the connection. The remote olmoctl (`remote_olmoctl`, the
venv's) gets the Slurm clients on its PATH and HOME = a folder of its own through sshd's
SetEnv, so the profile's `runs_root: ~/runs` resolves to the login node's home.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import HANG_GUARD_S, REPO, DevCluster, wait_for

pytestmark = pytest.mark.slurm
VENV_BIN = str(Path(sys.executable).parent)
SSHD = "/usr/sbin/sshd"
USER = pwd.getpwuid(os.getuid()).pw_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


class Sshd:
    """sshd -D -e on 127.0.0.1:PORT with its own host key, config, pid file and log."""

    def __init__(self, root: Path, cluster: DevCluster, name: str = "sshd") -> None:
        self.root = root
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.port = _free_port()
        self.host_key = _keygen(self.dir / "host_key")
        self.log = self.dir / "sshd.log"
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.dir / 'host_key'}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "UsePAM no\nStrictModes no\nLogLevel VERBOSE\n"
            f"SetEnv SLURM_CONF={cluster.dir / 'etc' / 'slurm.conf'} HOME={root / 'remote-home'}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        os.makedirs("/run/sshd", exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log
            )
        wait_for(lambda: "Server listening" in self.log.read_text(), HANG_GUARD_S, "sshd to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # by its pid; its session children end with their clients
            self.proc.wait(10)

    def accepted(self) -> int:
        """SSH connections so far: one 'Accepted publickey' line each."""
        return self.log.read_text().count("Accepted publickey")

    def known_hosts(self, key: str | None = None) -> str:
        return f"[127.0.0.1]:{self.port} {key or self.host_key}\n"


class Remote:
    """A cluster profile aimed at an sshd, and the local olmoctl to drive it."""

    def __init__(self, tmp: Path, cluster: DevCluster, sshd: Sshd, name: str = "far") -> None:
        self.tmp, self.cluster, self.sshd = tmp, cluster, sshd
        self.home = sshd.root / "remote-home"
        self.remote_state = tmp / "remote-state"
        self.env = {
            "PATH": f"{VENV_BIN}:/usr/bin:/bin",  # no Slurm client here
            "HOME": str(tmp / "local-home"),
            "OLMOCTL_STATE_DIR": str(tmp / "local-state"),
            "OLMOCTL_CONFIG_DIR": str(tmp / "config"),
            "OLMOCTL_SSH_TRACE": "1",
        }
        self.profile = self.write_profile(name)

    def write_profile(self, name: str, known_hosts: str | None = None, env: str = "") -> Path:
        kh = self.tmp / f"{name}.known_hosts"
        kh.write_text(known_hosts if known_hosts is not None else self.sshd.known_hosts())
        remote_olmoctl = (
            f"env PATH={self.cluster.dir / 'bin'}:{VENV_BIN}:/usr/bin:/bin "
            f"OLMOCTL_STATE_DIR={self.remote_state} {env} {VENV_BIN}/olmoctl"
        )
        text = (REPO / "clusters" / "dev.yaml").read_text().replace("name: dev", f"name: {name}")
        text = text.replace("runs_root: ~/olmoctl-runs/dev", "runs_root: ~/runs")
        # No burn-in (~10 s a job): the ssh path is under test here, not the burn-in.
        text = text.replace("burnin:\n", "burnin:\n  enabled: false\n", 1)
        text += (
            "ssh:\n"
            "  host: 127.0.0.1\n"
            f"  user: {USER}\n"
            f"  port: {self.sshd.port}\n"
            f"  identity_file: {self.sshd.root / 'user_key'}\n"
            f"  known_hosts: {kh}\n"
            f"  remote_olmoctl: {json.dumps(remote_olmoctl)}\n"  # JSON is YAML
        )
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        return path

    def __call__(
        self, *args: str, timeout: float = HANG_GUARD_S
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [f"{VENV_BIN}/olmoctl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )

    def counted(
        self, *args: str, timeout: float = HANG_GUARD_S
    ) -> tuple[subprocess.CompletedProcess, int]:
        """Run a command; (result, SSH connections it opened)."""
        before = self.sshd.accepted()
        res = self(*args, timeout=timeout)
        time.sleep(0.2)  # sshd writes its log line as the connection is accepted
        return res, self.sshd.accepted() - before

    def json(self, *args: str):
        res = self(*args, "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def launch(self, name: str, profile: Path | None = None) -> int:
        res, conns = self.counted("launch", "tiny", "--cluster", str(profile or self.profile),
                                  "--name", name)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert conns == 1, res.stderr
        # Slurm and the run dir's free space in one request, files + sbatch in the other;
        # the launch checks pass without a warning.
        assert "1 connection, 2 requests" in res.stderr and "warning" not in res.stderr
        job = int(res.stdout.split()[2])
        self.cluster.submitted.append(job)
        return job


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    """Our own folder, not pytest's basetemp: a concurrent pytest of the same user prunes old
    basetemps, and the jobs' run directories must outlive that."""
    path = Path(tempfile.mkdtemp(prefix="olmoctl-ssh-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def sshd(dev_cluster: DevCluster, root: Path) -> Iterator[Sshd]:
    if not Path(SSHD).exists():
        pytest.skip("openssh-server is not installed")
    user_key = _keygen(root / "user_key")
    (root / "authorized_keys").write_text(user_key + "\n")
    (root / "remote-home").mkdir()
    server = Sshd(root, dev_cluster)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tmp(root: Path, request: pytest.FixtureRequest) -> Path:
    path = root / re.sub(r"\W", "_", request.node.name)
    path.mkdir()
    return path


@pytest.fixture
def remote(dev_cluster: DevCluster, sshd: Sshd, tmp: Path) -> Remote:
    return Remote(tmp, dev_cluster, sshd)


def test_launch_status_logs_through_ssh(remote: Remote, dev_cluster: DevCluster) -> None:
    job = remote.launch("s1")
    res, conns = remote.counted("status")
    assert res.returncode == 0 and "s1" in res.stdout, res.stderr
    assert conns == 1 and "1 connection, 1 requests" in res.stderr  # sacct + tails: one trip

    res, conns = remote.counted("logs", "-f", "s1", timeout=HANG_GUARD_S)
    assert res.returncode == 0, res.stderr
    assert conns == 1, res.stderr
    assert f"s1: job {job} ended COMPLETED" in res.stderr
    steps = [line for line in res.stdout.splitlines() if line.startswith("step ")]
    assert len(steps) == len(set(steps)) >= 4, steps  # only new bytes: no line twice
    assert any(line.startswith("step 40/40") for line in steps), res.stdout[-2000:]

    res, conns = remote.counted("status", "s1", "--json")
    assert res.returncode == 0 and conns == 1, res.stderr
    d = json.loads(res.stdout)
    assert d["state"] == "COMPLETED" and d["step"] == d["total_steps"] == 40
    assert d["run_dir"] == str(remote.home / "runs" / "s1")  # the login node's ~
    assert d["attempt_list"][0]["klass"] == "COMPLETED"
    assert dev_cluster.sacct_state(job) == "COMPLETED"
    assert (remote.home / "runs" / "s1" / "scripts" / "attempt-1.sh").exists()
    # The store is local; the remote olmoctl keeps none.
    assert not remote.remote_state.exists()
    assert (remote.tmp / "local-state").is_dir()

    res, conns = remote.counted("status")  # nothing live: the store answers, no connection
    assert res.returncode == 0 and conns == 0


def test_cancel_and_resume_through_ssh(remote: Remote, dev_cluster: DevCluster) -> None:
    gate = remote.tmp / "gate"
    faults = json.dumps({"pause_after_step": 15, "gate": str(gate)}).replace(" ", "")
    paused = remote.write_profile("far-paused", env=f"OLMOCTL_TRAIN_FAULTS='{faults}'")
    job = remote.launch("s2", paused)
    wait_for(lambda: Path(f"{gate}.waiting.0").exists(), HANG_GUARD_S, "s2 to pause after step 15")

    res, conns = remote.counted("cancel", "s2")
    assert res.returncode == 0 and conns == 1, res.stderr
    assert f"cancelled job {job}" in res.stdout
    dev_cluster.wait_job(job)
    assert remote.json("status", "s2")["state"] == "CANCELLED"

    gate.write_text("go")
    res, conns = remote.counted("resume", "s2", "--json")
    assert res.returncode == 0 and conns == 1, res.stderr
    job2 = int(json.loads(res.stdout)["job_id"])
    dev_cluster.submitted.append(job2)
    assert job2 != job

    polls = []

    def done():
        res, conns = remote.counted("status", "s2", "--json")
        polls.append(conns)
        d = json.loads(res.stdout)
        return d if d["state"] in ("COMPLETED", "FAILED") else None

    d = wait_for(done, HANG_GUARD_S, "s2 to finish after resume", interval=1)
    assert set(polls) == {1}, polls  # every status: exactly one connection
    assert d["state"] == "COMPLETED" and d["step"] == 40
    second = d["attempt_list"][-1]
    loaded = int(str(second["evidence"]["checkpoint_loaded"]).rsplit("step_", 1)[1])
    assert second["job_id"] == str(job2) and loaded >= 10  # the newest complete checkpoint
    assert second["first_step"] == loaded + 1

    res, conns = remote.counted("nodes")  # node health is the local store's
    assert res.returncode == 0 and conns == 0


@pytest.mark.parametrize("case", ["changed", "unknown"])
def test_host_key_not_known_is_refused(
    remote: Remote, dev_cluster: DevCluster, sshd: Sshd, case: str
) -> None:
    other = _keygen(remote.tmp / "other_host_key")
    known = sshd.known_hosts(other) if case == "changed" else ""
    profile = remote.write_profile(f"far-{case}", known_hosts=known)
    name = f"hk-{case}"
    res, conns = remote.counted("launch", "tiny", "--cluster", str(profile), "--name", name)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "host key of 127.0.0.1" in lines[0] and "refusing to connect" in lines[0]
    assert ("does not match" if case == "changed" else "is not in") in lines[0]
    assert conns == 0  # refused before authenticating
    # Nothing submitted, nothing recorded, no run directory.
    sacct = dev_cluster.run(["sacct", "-X", "-n", "-P", "-S", "2000-01-01", "--name", name])
    assert sacct.returncode == 0 and sacct.stdout.strip() == ""
    squeue = dev_cluster.run(["squeue", "-h", "-n", name])
    assert squeue.stdout.strip() == ""
    assert remote.json("status") == []
    assert not (remote.home / "runs" / name).exists()


def test_stopped_sshd_is_one_line_and_exit_2(
    dev_cluster: DevCluster, sshd: Sshd, tmp: Path
) -> None:
    own = Sshd(sshd.root, dev_cluster, name="sshd-stopped")
    own.start()
    try:
        remote = Remote(tmp, dev_cluster, own)
        # `~/runs` is the login node's: even a dry run asks the remote side for its home.
        args = ("launch", "tiny", "--cluster", str(remote.profile), "--dry-run")
        res, conns = remote.counted(*args)
        assert res.returncode == 0 and conns == 1, res.stderr
        assert str(sshd.root / "remote-home" / "runs") in res.stdout
    finally:
        own.stop()
    res = remote(*args)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"olmoctl: error: cannot connect to {USER}@127.0.0.1:{own.port}: connection refused"
    ]
