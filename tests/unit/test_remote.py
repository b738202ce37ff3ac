"""The remote (ssh) cluster protocol without SSH: the local SSHBackend talks to a real
`olmoctl _remote serve` through pipes; the handler's rules (version, batching, errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import olmoctl
from olmoctl.backends import ssh, ssh_serve
from olmoctl.backends import ssh_protocol as wire
from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.backends.files import LOCAL
from olmoctl.backends.ssh_link import Link, RemoteServer
from olmoctl.core.launch import submit as launch
from olmoctl.core.track import events as ev
from olmoctl.core.track import logs
from olmoctl.core.track.status_reads import status_reads
from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.schemas.cluster import SSHConfig
from tests.conftest import REPO

OLMOCTL = str(Path(sys.executable).parent / "olmoctl")
CONFIG = SSHConfig(host="login.example", user="alice", remote_olmoctl="olmoctl")


class _PipeChannel:
    """Enough of a paramiko Channel over a local subprocess's pipes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def makefile_stdin(self, mode: str) -> Any:
        return self.proc.stdin

    def makefile(self, mode: str) -> Any:
        return self.proc.stdout

    def settimeout(self, timeout: float) -> None:
        return None

    def exit_status_ready(self) -> bool:
        return self.proc.poll() is not None

    def recv_exit_status(self) -> int:
        return self.proc.wait()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class _PipeLink(Link):
    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        super().__init__(CONFIG)
        self.argv, self.env = argv, env

    def open(self) -> RemoteServer:
        if self.server is None:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
            server = RemoteServer(_PipeChannel(proc), CONFIG)
            server.start()
            self.server = server
        return self.server


@pytest.fixture
def remote():
    link = _PipeLink([OLMOCTL, "_remote", "serve"])
    backend = ssh.SSHBackend(CONFIG, link)
    yield backend
    link.close()


# -- the handler -------------------------------------------------------------------------
class _RecordingFiles:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def glob(self, folder: str, pattern: str) -> list[str]:
        self.calls.append("glob")
        return LOCAL.glob(folder, pattern)


class _RefusingSlurm:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def cancel(self, job_id: str, run_dir: str) -> None:
        self.calls.append(f"cancel {job_id}")
        raise OlmoctlError(f"scancel {job_id} failed: no such job")


class _Recording(ssh_serve.LoginNode):
    def __init__(self) -> None:
        self.calls: list[str] = []
        super().__init__(fs=_RecordingFiles(self.calls), slurm=_RefusingSlurm(self.calls))


def test_version_mismatch_is_refused_before_any_op() -> None:
    ops = _Recording()
    req = {"olmoctl": "9.9.9", "id": 7, "ops": [{"op": "glob", "folder": "/", "pattern": "*"}]}
    answer = ssh_serve.handle(req, ops)
    assert answer["id"] == 7 and answer["exit_code"] == 2
    assert "local 9.9.9" in answer["fatal"] and f"remote {olmoctl.__version__}" in answer["fatal"]
    assert ops.calls == []


def test_ops_run_in_order_and_stop_at_the_first_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    ops = _Recording()
    req = {
        "olmoctl": olmoctl.__version__,
        "id": 1,
        "ops": [
            {"op": "glob", "folder": str(tmp_path), "pattern": "*.txt"},
            {"op": "cancel", "job_id": "12"},
            {"op": "glob", "folder": str(tmp_path), "pattern": "*"},
        ],
    }
    answer = ssh_serve.handle(req, ops)
    ok, err, skipped = answer["results"]
    assert ok == {"ok": [str(tmp_path / "a.txt")]}
    assert err == {"error": "scancel 12 failed: no such job", "exit_code": 1}
    assert skipped == {"skipped": True}
    assert ops.calls == ["glob", "cancel 12"]
    # Independent ops (a prefetch) go on after an error when asked to.
    answer = ssh_serve.handle({**req, "stop_on_error": False}, _Recording())
    assert "ok" in answer["results"][2]


def test_unknown_op_and_bad_arguments_are_one_line_errors() -> None:
    req = {"olmoctl": olmoctl.__version__, "id": 1, "stop_on_error": False}
    answer = ssh_serve.handle(
        {**req, "ops": [{"op": "__init__"}, {"op": "rm_rf"}, {"op": "glob", "nope": 1}]}
    )
    first, second, third = answer["results"]
    assert first["error"] == "unknown remote op '__init__'"
    assert second["error"] == "unknown remote op 'rm_rf'"
    assert third["exit_code"] == 2 and third["error"].startswith("bad arguments for glob")


def test_wire_encodings_round_trip() -> None:
    data = bytes(range(256)) * 100
    assert wire.decode_bytes(json.loads(json.dumps(wire.encode_bytes(data)))) == data
    info = JobInfo("12", "RUNNING", "node[1-2]", 1.0, None, None, None)
    res = QueryResult({"12": info}, "sacct", "n", history={"12": [info]})
    back = wire.decode_query(json.loads(json.dumps(wire.encode_query(res))))
    assert back == res


def test_call_answers_one_request_from_stdin(tmp_path: Path) -> None:
    req = {"olmoctl": olmoctl.__version__, "id": 3, "ops": [{"op": "exists", "path": "/"}]}
    p = subprocess.run(
        [OLMOCTL, "_remote", "call"], input=json.dumps(req), capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"id": 3, "results": [{"ok": True}]}


# -- the client over a real `_remote serve` ---------------------------------------------
def test_hello_reports_version_and_home(remote: ssh.SSHBackend) -> None:
    hello = remote.hello()
    assert hello["olmoctl"] == olmoctl.__version__
    assert hello["home"] == os.path.expanduser("~")
    assert remote.round_trips == 0


def test_local_version_other_than_remote_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(olmoctl, "__version__", "9.9.9")
    link = _PipeLink([OLMOCTL, "_remote", "serve"])
    try:
        with pytest.raises(UsageError) as e:
            link.open()
    finally:
        link.close()
    msg = str(e.value)
    assert "local 9.9.9" in msg and "remote 0.1.0" in msg and "login.example" in msg


def test_remote_that_does_not_start_names_the_reason() -> None:
    link = _PipeLink(["sh", "-c", "echo 'sh: 1: olmoctl: not found' >&2; exit 127"])
    try:
        with pytest.raises(UsageError, match=r"stopped \(exit 127\): sh: 1: olmoctl: not found"):
            link.open()
    finally:
        link.close()


def test_noise_before_the_answer_is_ignored() -> None:
    hello = wire.frame({"hello": ssh_serve.hello()}).decode()
    script = f"printf 'Welcome to the login node\\npartial line'; printf '%s' '{hello}'; cat"
    link = _PipeLink(["sh", "-c", script])
    try:
        server = link.open()
        assert server.hello["olmoctl"] == olmoctl.__version__
        assert list(server.noise) == ["Welcome to the login node", "partial line"]
    finally:
        link.close()


def test_files_through_the_remote(remote: ssh.SSHBackend, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "step_00000010").mkdir(parents=True)
    (run_dir / "checkpoints" / "step_00000010" / ".complete").touch()
    (run_dir / "checkpoints" / "step_00000020").mkdir()
    lines = [json.dumps({"event": "step", "step": i, "loss": 1.0 / i, "ts": i}) for i in (1, 2)]
    (run_dir / "events.jsonl").write_text("\n".join(lines) + "\n")
    fs = remote.files
    assert [e.step for e in ev.read_events(run_dir, fs=fs)] == [1, 2]
    assert ev.complete_checkpoints(run_dir, fs) == [
        (10, run_dir / "checkpoints" / "step_00000010", True),
        (20, run_dir / "checkpoints" / "step_00000020", False),
    ]
    assert fs.glob(str(run_dir), "*.jsonl") == [str(run_dir / "events.jsonl")]
    assert fs.read_tail(str(run_dir / "missing"), 10) == b""


def test_follower_reads_only_new_bytes(remote: ssh.SSHBackend, tmp_path: Path) -> None:
    a, b = tmp_path / "0.out", tmp_path / "1.out"
    a.write_text("one\n")
    follower = logs.Follower(remote.files)
    assert follower.read_new_many([a, b]) == [b"one\n", b""]
    with open(a, "a") as f:
        f.write("two\n")
    b.write_text("b1\n")
    before = remote.link.server.bytes_in
    assert follower.read_new_many([a, b]) == [b"two\n", b"b1\n"]
    assert follower.read_new_many([a, b]) == [b"", b""]
    assert follower.offsets == {a: 8, b: 3}
    assert remote.link.server.bytes_in - before < 400  # offsets, not whole files


def test_status_prefetch_is_one_round_trip(remote: ssh.SSHBackend, tmp_path: Path) -> None:
    dirs = []
    for name in ("r1", "r2"):
        d = tmp_path / name
        (d / "checkpoints" / "step_00000005").mkdir(parents=True)
        (d / "events.jsonl").write_text(json.dumps({"event": "step", "step": 5, "ts": 1}) + "\n")
        dirs.append(str(d))
    remote.prefetch(status_reads([], {}, dirs))
    assert remote.round_trips == 1
    for d in dirs:
        assert ev.read_events(d, fs=remote.files)[0].step == 5
        assert ev.complete_checkpoints(d, remote.files)[0][0] == 5
    assert remote.round_trips == 1  # answered from the prefetch
    ev.read_events(dirs[0], tail_bytes=None, fs=remote.files)  # not prefetched: asked
    assert remote.round_trips == 2


def test_failed_submission_leaves_no_remote_directory(
    user_env, remote: ssh.SSHBackend, tmp_path: Path, monkeypatch
) -> None:
    """The run directory travels with the submission; sbatch failing removes it there."""
    from olmoctl.store import Store

    runs = tmp_path / "remote-runs"
    (user_env / "clusters").mkdir(parents=True)
    profile = (REPO / "clusters" / "dev.yaml").read_text().replace("name: dev", "name: far")
    ssh_block = f"ssh:\n  host: login.example\n  remote_olmoctl: {OLMOCTL}\n"
    (user_env / "clusters" / "far.yaml").write_text(profile + ssh_block)
    store = Store()
    spec = launch.prepare(
        store, "tiny", "far", nodes=1, name="r", time_limit=None,
        overrides=[f"cluster.runs_root={runs}"],
    )  # fmt: skip
    assert spec.cluster.ssh is not None
    # The remote olmoctl runs without a Slurm client on its PATH: sbatch fails there.
    remote.link.close()
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    remote.link = _PipeLink([OLMOCTL, "_remote", "serve"], env=env)
    monkeypatch.setattr(remote, "check_reachable", lambda spec: None)
    with pytest.raises(OlmoctlError):
        launch.submit_attempt(store, spec, remote, new_run=True)
    assert remote.round_trips == 1  # files and sbatch together
    assert not (runs / "r").exists()
    assert store.run_names() == []
    remote.link.close()


def test_ssh_modules_import_no_fabric() -> None:
    code = (
        "import sys\n"
        "import olmoctl.backends.ssh, olmoctl.backends.ssh_serve, olmoctl.cli.remote_cmd\n"
        "import olmoctl.core.launch.runfiles, olmoctl.backends.files\n"
        "import olmoctl.core.track.status_reads\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('fabric', 'paramiko')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_backend_for_gives_one_backend_per_login_node(user_env, tmp_path: Path) -> None:
    from olmoctl.backends.registry import backend_for, backend_key

    cluster = {"scheduler": "slurm", "ssh": CONFIG.model_dump(mode="json")}
    key = backend_key(cluster)
    assert key.startswith("ssh:") and backend_key({"scheduler": "slurm"}) == "slurm"
    first = backend_for(key)
    assert isinstance(first, ssh.SSHBackend) and backend_for(key) is first
    assert first.link.conn is None  # nothing connects until something is asked


# -- the op table and the declared prefetch ----------------------------------------------------
def test_one_op_table_for_dispatch_listing_and_docs() -> None:
    p = subprocess.run([OLMOCTL, "_remote", "ops"], capture_output=True, text=True, check=True)
    assert p.stdout.splitlines() == ssh_serve.listing()
    assert [line.split("(")[0] for line in ssh_serve.listing()] == list(ssh_serve.OPS)
    docs = (REPO / "docs" / "remote.md").read_text()
    assert all(f"`{name}`" in docs for name in ssh_serve.OPS), "docs/remote.md lists every op"
    answer = ssh_serve.handle(
        {"olmoctl": olmoctl.__version__, "id": 1, "ops": [{"op": "glob", "folder": 1}]}
    )
    (bad,) = answer["results"]
    assert bad["exit_code"] == 2 and "missing 'pattern'" in bad["error"]
    assert "wrong type for 'folder'" in bad["error"]


class _FakeSlurm:
    """The login node's Slurm: job 12 FAILED (its ranks are read), 13 NODE_FAIL on n2."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def check_reachable(self, spec: Any) -> None:
        self.asked.append("check_reachable")

    def submit(self, spec: Any, script: str) -> tuple[str, str]:
        self.asked.append("submit")
        return str(12 + sum(a == "submit" for a in self.asked) - 1), script

    def query(self, jobs: dict[str, str]) -> QueryResult:
        job_ids = list(jobs)
        self.asked.append(f"query {job_ids}")
        ended = {
            "12": JobInfo("12", "FAILED", "n1", 1.0, 2.0, "1:0"),
            "13": JobInfo("13", "NODE_FAIL", "n2", 1.0, 2.0, "0:0"),
        }
        jobs = {j: ended[j] for j in job_ids}
        return QueryResult(jobs, "sacct", history={j: [i] for j, i in jobs.items()})

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        self.asked.append(f"queued {job_ids}")
        return {}

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        self.asked.append(f"node_states {nodes}")
        return {nodes: ("DOWN", "not responding")}


class _InProcessServer:
    """A `_remote serve` in this process (its answers through JSON, as on the wire)."""

    def __init__(self, node: ssh_serve.LoginNode) -> None:
        self.node = node
        self.round_trips = 0
        self.bytes_in = 0
        self.hello = ssh_serve.hello()

    def request(self, ops: list[dict[str, Any]], stop_on_error: bool) -> list[dict[str, Any]]:
        self.round_trips += 1
        req = {"olmoctl": olmoctl.__version__, "id": 1, "ops": json.loads(json.dumps(ops))}
        answer = ssh_serve.handle({**req, "stop_on_error": stop_on_error}, self.node)
        return json.loads(json.dumps(answer))["results"]

    def close(self) -> None:
        return None


def test_status_of_ended_remote_jobs_is_one_request(user_env, tmp_path: Path, monkeypatch) -> None:
    """The declared prefetch covers everything status reads, classification included: the
    sacct, squeue of a maybe-requeued job, the logs and node states of the jobs that ended,
    events tails and checkpoints; so `status` makes exactly one request."""
    from olmoctl.core.track import status
    from olmoctl.store import Store

    slurm = _FakeSlurm()
    link = Link(CONFIG)
    link.server = _InProcessServer(ssh_serve.LoginNode(slurm=slurm))  # type: ignore[assignment]
    remote = ssh.SSHBackend(CONFIG, link)
    runs = tmp_path / "remote-runs"
    (user_env / "clusters").mkdir(parents=True)
    profile = (REPO / "clusters" / "dev.yaml").read_text().replace("name: dev", "name: far")
    (user_env / "clusters" / "far.yaml").write_text(profile + "ssh:\n  host: login.example\n")
    store = Store()
    for name in ("r12", "r13"):
        spec = launch.prepare(
            store, "tiny", "far", nodes=1, name=name, time_limit=None,
            overrides=[f"cluster.runs_root={runs}"],
        )  # fmt: skip
        launch.submit_attempt(store, spec, remote, new_run=True)
    logs_dir = runs / "r12" / "logs"
    (logs_dir / "slurm-12.out").write_text("srun: error: task 0: Exited\n")
    (logs_dir / "12-rank0.out").write_text(
        'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad batch\n'
    )
    monkeypatch.setattr(status, "backend_for", lambda key: remote)
    before, slurm.asked[:] = remote.round_trips, []

    status.refresh(store)

    assert remote.round_trips - before == 1
    assert slurm.asked == ["query ['12', '13']", "queued ['13']", "node_states n2"]
    klass = {n: store.attempts(n)[0].klass for n in ("r12", "r13")}
    assert klass == {"r12": "CODE_ERROR", "r13": "NODE_FAIL"}
