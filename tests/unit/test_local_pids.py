"""Issue 26 item 4: a pid is not an identity. A local job is its controller's pid plus the
start time recorded at submit (backends/procs.py, olmoctl.jobid, attempts.job_identity);
`status`, `cancel` and `watch` act on (signal, or call alive) only that very process. A
stale row whose pid now belongs to an unrelated process (a `sleep` started here) leaves it
alone; a row from before identities were recorded is never signalled and says so; a real
local job (submitit's controller and its tasks) is still cancelled, its whole tree."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from olmoctl.backends import local, procs
from olmoctl.backends.local import LocalBackend
from olmoctl.core.launch import submit as launch
from olmoctl.core.supervise import watch as supervise
from olmoctl.errors import OlmoctlError
from olmoctl.jobid import JobId
from olmoctl.store import Store

HANG_GUARD_S = 60.0


def _until(cond, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + HANG_GUARD_S  # a hang guard only
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process of this user: what a reused pid names now."""
    p = subprocess.Popen(["sleep", "300"])
    yield p
    p.kill()
    p.wait()


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "CANCEL_GRACE_S", 0.5)


def _earlier_holder(pid: int) -> str:
    """The identity of a process that had `pid` before the one that has it now."""
    now = procs.identify(pid)
    assert now is not None and now.start > 0
    return procs.Proc(pid, now.start - 1, now.boot).token


class _Recorded(LocalBackend):
    """Records `job` as the submitted job (no process is started)."""

    def __init__(self, job: JobId) -> None:
        self.job = job

    def check_reachable(self, spec: object) -> None:
        return None

    def submit(self, spec: object, script: str) -> tuple[str, str]:
        return self.job, script


def _run(store: Store, root: Path, job: JobId, *, started_long_ago: bool = False) -> None:
    spec = launch.prepare(store, "tiny", "local", nodes=1, name="r", time_limit=None,
                          overrides=[f"cluster.runs_root={root}"])  # fmt: skip
    launch.submit_attempt(store, spec, _Recorded(job), new_run=True)
    with store.tx() as tx:
        a = tx.last_attempt("r")
        # RUNNING for an hour without a step: past the profile's hang timeout for watch
        since = time.time() - 10 * spec.cluster.hang_timeout_s if started_long_ago else None
        tx.update_attempt(a.id, state="RUNNING", started_at=since)


def test_identity_is_kept_with_the_job_id_in_the_store(user_env: Path, tmp_path: Path) -> None:
    store = Store()
    _run(store, tmp_path, JobId("4242", "123@abc-1"))
    got = store.last_attempt("r").job_id
    assert got == "4242" and isinstance(got, JobId) and got.identity == "123@abc-1"
    with store.tx() as tx:  # a new job id (Slurm's, recovered...) never keeps the old one's
        tx.update_attempt(tx.last_attempt("r").id, job_id="4243")
    assert store.last_attempt("r").job_id.identity is None


def test_a_stale_row_neither_signals_nor_calls_a_stranger_alive(
    cli, user_env: Path, tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    job = JobId(str(stranger.pid), _earlier_holder(stranger.pid))
    backend = LocalBackend()
    assert backend.query({job: str(tmp_path)}).jobs[job].state == "FAILED"
    assert backend.queued([job]) == {}
    backend.cancel(job, str(tmp_path))
    store = Store()
    _run(store, tmp_path / "runs", job, started_long_ago=True)
    store.close()
    res = cli("cancel", "r")
    assert res.code == 0, res.err
    assert Store().last_attempt("r").state == "CANCELLED"
    assert stranger.poll() is None, "cancel signalled an unrelated process"


def test_watch_leaves_a_stranger_with_a_stale_rows_pid_alone(
    user_env: Path, tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    """The row says RUNNING for ten hang timeouts without a step: watch would cancel a hung
    job, but the pid's process is not the job; the job has ended."""
    store = Store()
    _run(store, tmp_path, JobId(str(stranger.pid), _earlier_holder(stranger.pid)),
         started_long_ago=True)  # fmt: skip
    supervise.tick(store, "me", supervise.WatchPolicy(backoff_s=0))
    assert stranger.poll() is None, "watch signalled an unrelated process"
    first = store.attempts("r")[0]  # ended without a word of its own: killed, so resumed
    assert first.state == "FAILED" and first.klass == "RANK_KILLED"


def test_an_old_row_without_identity_is_never_signalled_and_says_so(
    cli, user_env: Path, tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    job = JobId(str(stranger.pid))  # written before identities were recorded
    info = LocalBackend().query({job: str(tmp_path)}).jobs[job]
    assert info.state == "UNKNOWN" and "no process identity" in (info.reason or "")
    with pytest.raises(OlmoctlError, match=r"no process identity.*not signalled"):
        LocalBackend().cancel(job, str(tmp_path))
    for bad in ("0", "-1", "1e3", "٣", "99999999999"):  # never a pid to signal
        with pytest.raises(OlmoctlError, match="is not a pid"):
            LocalBackend().cancel(JobId(bad, "1@x"), str(tmp_path))
    store = Store()
    _run(store, tmp_path / "runs", job, started_long_ago=True)
    store.close()
    res = cli("cancel", "r")
    assert res.code == 1 and "not signalled" in res.err and "Traceback" not in res.err
    assert stranger.poll() is None


def test_signals_reach_only_the_very_process(stranger: subprocess.Popen[bytes]) -> None:
    me = procs.identify(stranger.pid)
    assert me is not None and procs.running(me) and procs.is_current(me)
    earlier = procs.Proc.of_token(stranger.pid, _earlier_holder(stranger.pid))
    assert earlier is not None and not procs.running(earlier)
    assert not procs.send(earlier, signal.SIGKILL)
    assert stranger.poll() is None
    assert procs.Proc.of_token(stranger.pid, "not a token") is None
    assert procs.send(me, signal.SIGKILL)
    stranger.wait()
    assert not procs.running(me) and not procs.send(me, signal.SIGKILL)


def test_a_real_local_job_and_its_tree_are_cancelled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """submitit's LocalExecutor as `launch` uses it: its controller runs a task that runs a
    shell that runs sleep. The job id carries the controller's identity; cancel stops all."""
    import olmoctl.train.submit_entry as entry

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # The task calls JOB()(RUN_DIR/spec.json): os.system runs that file, a long sleep.
    (run_dir / "spec.json").write_text("#!/bin/sh\nsleep 300 & sleep 300\n")
    (run_dir / "spec.json").chmod(0o755)
    monkeypatch.setattr(entry, "TrainJob", _system)
    spec = SimpleNamespace(
        run_dir=str(run_dir),
        time="00:10:00",
        cluster=SimpleNamespace(tasks_per_node=1, env={}),
    )
    job, _ = LocalBackend().submit(spec, "")  # type: ignore[arg-type]
    assert isinstance(job, JobId) and job.identity is not None
    controller = procs.Proc.of_token(int(job), job.identity)
    assert controller is not None
    _until(lambda: len(procs.descendants(controller)) >= 4, "the job's tree to start")
    tree = [controller, *procs.descendants(controller)]
    assert LocalBackend().queued([job])[job].state == "RUNNING"
    LocalBackend().cancel(job, str(run_dir))
    _until(lambda: not any(procs.running(p) for p in tree), "the tree to be gone")
    assert LocalBackend().query({job: str(run_dir)}).jobs[job].state == "CANCELLED"


def _system() -> object:
    return os.system
