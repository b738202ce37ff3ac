"""Exit statuses scripts can trust (issue 26 item 12): `watch --until-done` exits 0 only when
every watched run COMPLETED, else the worst of what `--wait` says for each (1 before 4
before 3); `logs -f` exits, once the run has ended, with the status `--wait` would. Fake
scheduler (conftest's `run`: one run `r`); the real cluster is tests/integration's."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoctl.cli import exits
from olmoctl.core.launch import submit as launch
from olmoctl.core.track import status
from olmoctl.store import Store
from tests.unit.test_store import FakeBackend


def _end(store: Store, name: str, state: str, klass: str | None) -> None:
    with store.tx() as tx:
        a = tx.last_attempt(name)
        tx.update_attempt(a.id, state=state, klass=klass, reason=f"{klass} here", ended_at=1.0)


def _another(store: Store, name: str, tmp_path: Path) -> None:
    spec = launch.prepare(store, "tiny", "dev", nodes=1, name=name, time_limit=None,
                          overrides=[f"cluster.runs_root={tmp_path}"])  # fmt: skip
    launch.submit_attempt(store, spec, FakeBackend(), new_run=True)


def test_worst_orders_failed_stopped_cancelled_ok() -> None:
    F, S, C, OK = exits.FAILED, exits.STOPPED, exits.CANCELLED, exits.OK
    assert exits.worst([]) == OK and exits.worst([OK, OK]) == OK
    assert exits.worst([OK, C]) == C and exits.worst([C, S, OK]) == S
    assert exits.worst([S, F, C]) == F and exits.worst([C, S]) == S


# (state, class) of the run's last attempt -> watch --until-done's status, as --wait's.
ENDS = [
    ("COMPLETED", "COMPLETED", exits.OK),
    ("FAILED", "CODE_ERROR", exits.FAILED),
    ("OUT_OF_MEMORY", "OOM", exits.FAILED),
    ("FAILED", "UNKNOWN", exits.FAILED),
    ("CANCELLED", "CANCELLED", exits.CANCELLED),
    ("NODE_FAIL", "NODE_FAIL", exits.STOPPED),  # retries spent (--max-retries 0)
    ("TIMEOUT", "TIMEOUT", exits.STOPPED),
]


@pytest.mark.parametrize(("state", "klass", "code"), ENDS)
def test_watch_until_done_exits_as_wait_would(
    cli, run: Store, state: str, klass: str, code: int
) -> None:
    _end(run, "r", state, klass)
    res = cli("watch", "r", "--until-done", "--max-retries", "0")
    assert res.code == code, res.err
    assert len(run.attempts("r")) == 1  # nothing resumed: the status is of this end
    if code != exits.OK:
        assert f"r ended {klass}: {klass} here (exit status {code})" in res.err


def test_watch_until_done_takes_the_worst_run(cli, run: Store, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _another(run, name, tmp_path)
    _end(run, "r", "COMPLETED", "COMPLETED")
    _end(run, "a", "CANCELLED", "CANCELLED")
    _end(run, "b", "TIMEOUT", "TIMEOUT")
    _end(run, "c", "COMPLETED", "COMPLETED")
    args = ("watch", "--until-done", "--max-retries", "0")
    assert cli(*args, "r", "c").code == exits.OK
    assert cli(*args, "r", "a").code == exits.CANCELLED
    assert cli(*args, "a", "b").code == exits.STOPPED  # resumable before cancelled
    res = cli(*args)  # every run in the store
    assert res.code == exits.STOPPED and "a ended CANCELLED" in res.err
    _end(run, "c", "FAILED", "CODE_ERROR")
    assert cli(*args).code == exits.FAILED  # a human is needed: first
    assert cli("watch", "--once", "--max-retries", "0").code == exits.OK  # one look: no verdict


# -- logs -f --------------------------------------------------------------------------------
class _Ends(FakeBackend):
    """The scheduler says every job ended in `state`."""

    def __init__(self, state: str) -> None:
        super().__init__()
        self.state = state

    def query(self, job_ids):
        from olmoctl.backends.base import JobInfo, QueryResult

        jobs = {j: JobInfo(j, self.state, "node1", start=1.0, end=2.0) for j in job_ids}
        return QueryResult(jobs, "sacct", history={j: [i] for j, i in jobs.items()})


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("COMPLETED", exits.OK),
        ("FAILED", exits.FAILED),
        ("OUT_OF_MEMORY", exits.FAILED),
        ("CANCELLED", exits.CANCELLED),
        ("TIMEOUT", exits.STOPPED),
        ("NODE_FAIL", exits.STOPPED),
    ],
)
def test_logs_follow_exits_as_wait_would(
    cli, run: Store, monkeypatch: pytest.MonkeyPatch, state: str, code: int
) -> None:
    monkeypatch.setattr(status, "backend_for", lambda key: _Ends(state))
    res = cli("logs", "r", "-f")
    last = run.last_attempt("r")
    assert last is not None and not last.is_live
    assert res.code == code == exits.of_run_end(last), res.err
    if code != exits.OK:
        assert f"r: exit status {code}" in res.err


def test_logs_follow_goes_on_to_the_next_attempt(
    cli, run: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requeue or resume makes a new attempt: the run has not ended, and --wait would wait
    for it; so does logs -f (without --attempt), and the status is the new attempt's."""
    from olmoctl.cli import logs_cmd
    from olmoctl.core.track.runs import spec_of

    monkeypatch.setattr(logs_cmd, "POLL_S", 0.0)
    looks = iter(range(3))

    def refresh(store: Store, run_names: list[str]) -> None:
        look = next(looks)  # a fourth look: the follow did not stop at the run's end
        if look == 1:  # attempt 1 stopped by a node failure; watch resumed it
            _end(store, "r", "NODE_FAIL", "NODE_FAIL")
            spec = spec_of(store.get_run("r"))
            launch.submit_attempt(store, spec, FakeBackend(), new_run=False)
        elif look == 2:
            _end(store, "r", "COMPLETED", "COMPLETED")

    monkeypatch.setattr(status, "refresh", refresh)
    res = cli("logs", "r", "-f")
    assert res.code == exits.OK, res.err
    assert "now attempt 2" in res.err and [a.attempt_no for a in run.attempts("r")] == [1, 2]

    looks = iter(range(1))  # --attempt 1: that attempt's own end, at the first look
    monkeypatch.setattr(status, "refresh", lambda store, run_names: next(looks))
    res = cli("logs", "r", "-f", "--attempt", "1")
    assert res.code == exits.STOPPED and "exit status 4 (NODE_FAIL)" in res.err
