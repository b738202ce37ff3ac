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
from olmoctl.backends import ssh
from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.cli import remote_cmd
from olmoctl.core import events as ev
from olmoctl.core import launch, logs
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


class _PipeLink(ssh._Link):
    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        super().__init__(CONFIG)
        self.argv, self.env = argv, env

    def open(self) -> ssh._Server:
        if self.server is None:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
            server = ssh._Server(_PipeChannel(proc), CONFIG)
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
class _Recording(remote_cmd._Ops):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def glob(self, folder: str, pattern: str) -> list[str]:
        self.calls.append("glob")
        return super().glob(folder, pattern)

    def cancel(self, job_id: str) -> None:
        self.calls.append(f"cancel {job_id}")
        raise OlmoctlError(f"scancel {job_id} failed: no such job")


def test_version_mismatch_is_refused_before_any_op() -> None:
    ops = _Recording()
    req = {"olmoctl": "9.9.9", "id": 7, "ops": [{"op": "glob", "folder": "/", "pattern": "*"}]}
    answer = remote_cmd.handle(req, ops)
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
    answer = remote_cmd.handle(req, ops)
    ok, err, skipped = answer["results"]
    assert ok == {"ok": [str(tmp_path / "a.txt")]}
    assert err == {"error": "scancel 12 failed: no such job", "exit_code": 1}
    assert skipped == {"skipped": True}
    assert ops.calls == ["glob", "cancel 12"]
    # Independent ops (a prefetch) go on after an error when asked to.
    answer = remote_cmd.handle({**req, "stop_on_error": False}, _Recording())
    assert "ok" in answer["results"][2]


def test_unknown_op_and_bad_arguments_are_one_line_errors() -> None:
    req = {"olmoctl": olmoctl.__version__, "id": 1, "stop_on_error": False}
    answer = remote_cmd.handle(
        {**req, "ops": [{"op": "__init__"}, {"op": "rm_rf"}, {"op": "glob", "nope": 1}]}
    )
    first, second, third = answer["results"]
    assert first["error"] == "unknown remote op '__init__'"
    assert second["error"] == "unknown remote op 'rm_rf'"
    assert third["exit_code"] == 2 and third["error"].startswith("bad arguments for glob")


def test_wire_encodings_round_trip() -> None:
    data = bytes(range(256)) * 100
    assert ssh.decode_bytes(json.loads(json.dumps(ssh.encode_bytes(data)))) == data
    info = JobInfo("12", "RUNNING", "node[1-2]", 1.0, None, None, None)
    res = QueryResult({"12": info}, "sacct", "n", history={"12": [info]})
    back = ssh.decode_query(json.loads(json.dumps(ssh.encode_query(res))))
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
    hello = ssh.frame({"hello": remote_cmd.hello()}).decode()
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
    assert [e["step"] for e in ev.read_events(run_dir, fs=fs)] == [1, 2]
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
    remote.prefetch([], {}, dirs)
    assert remote.round_trips == 1
    for d in dirs:
        assert ev.read_events(d, fs=remote.files)[0]["step"] == 5
        assert ev.complete_checkpoints(d, remote.files)[0][0] == 5
    assert remote.round_trips == 1  # answered from the prefetch
    ev.read_events(dirs[0], tail_bytes=None, fs=remote.files)  # not prefetched: asked
    assert remote.round_trips == 2


def test_failed_submission_leaves_no_remote_directory(
    user_env, remote: ssh.SSHBackend, tmp_path: Path, monkeypatch
) -> None:
    """The run directory travels with the submission; sbatch failing removes it there."""
    from olmoctl.core.store import Store

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
        "import olmoctl.backends.ssh, olmoctl.cli.remote_cmd, olmoctl.backends.files\n"
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
