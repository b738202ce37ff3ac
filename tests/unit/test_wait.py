"""`launch --wait` on a job that has already ended returns at the first look, with the exit
status of README's table, even while accounting (sacct) lags the controller: sacct may
still say RUNNING, or not list a job that ended at once, for minutes; squeue --states=all
has the end state at once (for MinJobAge). The real cluster: tests/integration/
test_wait_exits.py::test_wait_exits_1_at_once_when_the_job_fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoctl.backends import prefetch as pf
from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.cli import exits, progress
from olmoctl.core.launch import submit as launch
from olmoctl.core.track import attempts as att
from olmoctl.core.track import status
from olmoctl.store import LIVE_STATES, Store
from tests.unit.test_store import FakeBackend

LIVE = frozenset(str(s) for s in LIVE_STATES)
MAX_LOOKS = 3  # a wait that needs more has not seen the ending: the test stops it


class LaggingAccounting(FakeBackend):
    """sacct says `sacct_state` (None: no record yet); the controller says `ctl_state`."""

    def __init__(self, sacct_state: str | None, ctl_state: str | None) -> None:
        super().__init__()
        self.sacct_state = sacct_state
        self.ctl_state = ctl_state
        self.asked: list[list[str]] = []

    def query(self, jobs):
        self.queries.append(list(jobs))
        if len(self.queries) > MAX_LOOKS:
            raise AssertionError(f"still waiting after {MAX_LOOKS} looks")
        if self.sacct_state is None:
            return QueryResult({}, "sacct", history={})
        found = {j: JobInfo(j, self.sacct_state, "node1", start=100.0) for j in jobs}
        return QueryResult(found, "sacct", history={j: [i] for j, i in found.items()})

    def queued(self, job_ids):
        self.asked.append(list(job_ids))
        if self.ctl_state is None:
            return {}
        return {j: JobInfo(j, self.ctl_state, "node1", reason="NonZeroExitCode") for j in job_ids}


@pytest.fixture
def lagging(user_env: Path, tmp_path: Path, monkeypatch):
    """Launch `tiny` on dev through the fake; returns (make, store)."""
    monkeypatch.setattr(progress, "POLL_S", 0.01)

    def make(sacct_state: str | None, ctl_state: str | None) -> LaggingAccounting:
        fake = LaggingAccounting(sacct_state, ctl_state)
        monkeypatch.setattr(launch, "backend_for", lambda spec: fake)
        monkeypatch.setattr(status, "backend_for", lambda key: fake)
        return fake

    return make


@pytest.mark.parametrize(
    ("ctl_state", "code"),
    [
        ("FAILED", exits.FAILED),
        ("COMPLETED", exits.OK),
        ("CANCELLED", exits.CANCELLED),
        ("TIMEOUT", exits.STOPPED),
        ("OUT_OF_MEMORY", exits.FAILED),
    ],
)
@pytest.mark.parametrize("sacct_state", ["RUNNING", "PENDING", None])
def test_launch_wait_returns_at_once_when_the_controller_saw_the_end(
    cli, lagging, tmp_path: Path, sacct_state: str | None, ctl_state: str, code: int
) -> None:
    fake = lagging(sacct_state, ctl_state)
    res = cli("launch", "tiny", "-c", "dev", "--name", "w", "--wait",
              "-o", f"cluster.runs_root={tmp_path}")  # fmt: skip
    assert res.code == code, res.err
    assert len(fake.queries) == 1  # the first look saw it
    last = Store().last_attempt("w")
    assert last is not None and last.state == ctl_state and last.ended_at is not None
    if code != exits.OK:
        assert f"w: ended {last.klass}" in res.err


def test_a_running_job_is_not_called_over(lagging, tmp_path: Path) -> None:
    """The controller agrees it lives: sacct's record stands, the wait goes on."""
    fake = lagging("RUNNING", "RUNNING")
    store = Store()
    spec = launch.prepare(store, "tiny", "dev", nodes=1, name="r", time_limit=None,
                          overrides=[f"cluster.runs_root={tmp_path}"])  # fmt: skip
    launch.submit_attempt(store, spec, new_run=True)
    # timeout=0: exactly one look, then return (not a deadline: the fakes answer at once).
    last = progress.wait_for_run(store, "r", quiet=True, timeout=0)
    assert last is not None and last.state == "RUNNING" and last.is_live
    assert fake.asked and all(a == [last.job_id] for a in fake.asked)


def test_accounting_that_answered_ended_is_not_second_guessed(lagging, tmp_path) -> None:
    """sacct already says FAILED: squeue is not asked (one call per look, as before)."""
    fake = lagging("FAILED", None)
    store = Store()
    spec = launch.prepare(store, "tiny", "dev", nodes=1, name="f", time_limit=None,
                          overrides=[f"cluster.runs_root={tmp_path}"])  # fmt: skip
    launch.submit_attempt(store, spec, new_run=True)
    last = progress.wait_for_run(store, "f", quiet=True)
    assert last is not None and last.state == "FAILED" and fake.asked == []


@pytest.mark.parametrize(
    ("records", "ctl", "merged"),
    [
        ([], "FAILED", True),
        (["RUNNING"], "FAILED", True),
        (["COMPLETING"], "COMPLETED", True),
        (["RUNNING"], "RUNNING", False),
        (["RUNNING"], "COMPLETING", False),
        (["FAILED"], "FAILED", False),  # accounting has it: nothing to correct
    ],
)
def test_incarnations(records: list[str], ctl: str, merged: bool) -> None:
    """The controller's end state wins over sacct's live word (or its silence) only."""
    history = [JobInfo("1", s, "n1", start=5.0, exit_code="0:0") for s in records]
    got = pf.incarnations(history, JobInfo("1", ctl, "n1"), att.MAYBE_REQUEUED, LIVE)
    if merged:
        assert [r.state for r in got] == [ctl] and got[0].end is not None
        assert got[0].start == (5.0 if records else None)
    else:
        assert got == history


def test_a_requeued_job_gets_the_controllers_record_as_its_next_incarnation() -> None:
    history = [JobInfo("1", "REQUEUED", "n1")]
    got = pf.incarnations(history, JobInfo("1", "PENDING"), att.MAYBE_REQUEUED, LIVE)
    assert [r.state for r in got] == ["REQUEUED", "PENDING"]


def test_a_resized_record_with_a_later_one_is_the_incarnation_that_lost_a_node() -> None:
    """--no-kill: sacct keeps the job before the shrink as RESIZING, then the job on the
    survivors; the first ended with a lost node (the batch script restarted in place)."""
    history = [JobInfo("1", "RESIZING", "n[1-3]"), JobInfo("1", "RUNNING", "n[1-2]")]
    got = pf.incarnations(history, None, att.MAYBE_REQUEUED, LIVE)
    assert [r.state for r in got] == ["NODE_FAIL", "RUNNING"]
    assert got[0].reason == pf.RESIZED_REASON and got[0].node_list == "n[1-3]"
    alone = [JobInfo("1", "RESIZING", "n[1-3]")]  # the last record: still under way
    assert pf.incarnations(alone, None, att.MAYBE_REQUEUED, LIVE) == alone


def test_a_remote_status_is_still_one_request(user_env: Path, tmp_path: Path, monkeypatch):
    """Over ssh the login node applies the same rule (prefetch.controller_asks): the squeue
    of a job sacct still calls RUNNING comes in the one request, and it is seen FAILED."""
    from olmoctl.backends import ssh, ssh_serve
    from olmoctl.backends.ssh_link import Link
    from tests.unit.test_remote import CONFIG, REPO, _FakeSlurm, _InProcessServer

    class Lagging(_FakeSlurm):
        def query(self, jobs):
            self.asked.append(f"query {list(jobs)}")
            found = {j: JobInfo(j, "RUNNING", "n1", 1.0) for j in jobs}
            return QueryResult(found, "sacct", history={j: [i] for j, i in found.items()})

        def queued(self, job_ids):
            self.asked.append(f"queued {job_ids}")
            return {j: JobInfo(j, "FAILED", "n1", reason="NonZeroExitCode") for j in job_ids}

    slurm = Lagging()
    link = Link(CONFIG)
    link.server = _InProcessServer(ssh_serve.LoginNode(slurm=slurm))  # type: ignore[assignment]
    remote = ssh.SSHBackend(CONFIG, link)
    (user_env / "clusters").mkdir(parents=True)
    profile = (REPO / "clusters" / "dev.yaml").read_text().replace("name: dev", "name: far")
    (user_env / "clusters" / "far.yaml").write_text(profile + "ssh:\n  host: login.example\n")
    store = Store()
    spec = launch.prepare(store, "tiny", "far", nodes=1, name="r12", time_limit=None,
                          overrides=[f"cluster.runs_root={tmp_path / 'runs'}"])  # fmt: skip
    launch.submit_attempt(store, spec, remote, new_run=True)
    monkeypatch.setattr(status, "backend_for", lambda key: remote)
    before, slurm.asked[:] = remote.round_trips, []

    status.refresh(store)

    assert remote.round_trips - before == 1
    assert slurm.asked == ["query ['12']", "queued ['12']"]
    last = store.last_attempt("r12")
    assert last is not None and last.state == "FAILED" and not last.is_live
