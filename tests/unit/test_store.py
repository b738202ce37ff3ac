"""The state store: modes, WAL, migrations, concurrent writers, and launch's all-or-nothing."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
import time
from pathlib import Path

import pytest

from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.backends.slurm import SlurmBackend
from olmoctl.core.launch import submit as launch
from olmoctl.core.track import status
from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.store import MIGRATIONS, AttemptState, Store


def test_new_store_is_private_wal_and_versioned(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    conn = store.connect(create=True)
    assert stat.S_IMODE(os.stat(store.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.connect(create=True).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    store.close()
    with pytest.raises(UsageError, match="newer than this olmoctl knows"):
        Store(tmp_path).connect()


def test_unusable_state_dir_is_a_usage_error(cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = cli("--state-dir", str(blocker / "sub"), "status")
    assert res.code == 2
    assert "is not usable (Not a directory)" in res.err and len(res.err.strip().splitlines()) == 1


def _writer(state: str, n: int) -> None:
    store = Store(state)
    for _ in range(n):
        with store.tx() as tx:
            tx.add_attempt("r", cluster="dev", nodes=1, state="PENDING")


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.connect(create=True).execute(
        "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, "
        "total_steps, created_at, updated_at) VALUES ('r','tiny','dev',1,'PENDING','/x','{}',"
        "1,0,0)"
    )
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 40)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)  # a hang guard: the writes take seconds
        assert p.exitcode == 0
    numbers = [a.attempt_no for a in store.attempts("r")]
    assert numbers == list(range(1, 81))


class FakeBackend(SlurmBackend):
    """A stand-in scheduler for unit tests (the real Slurm is in tests/integration): Slurm's
    file layout, no Slurm calls."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.queries: list[list[str]] = []
        self.next_id = 100

    def check_reachable(self, spec) -> None:
        return None

    def submit(self, spec, script):
        if self.fail:
            raise OlmoctlError("sbatch failed: boom")
        self.next_id += 1
        return str(self.next_id), script

    def query(self, job_ids):
        self.queries.append(list(job_ids))
        jobs = {j: JobInfo(j, "RUNNING", "node1") for j in job_ids}
        return QueryResult(jobs, "sacct", history={j: [i] for j, i in jobs.items()})

    def queued(self, job_ids):
        return {}

    def node_states(self, nodes):
        return {}

    def exclude_pending(self, job_id, nodes) -> bool:
        return False

    def cancel(self, job_id, run_dir) -> None:
        return None


def test_failed_submission_leaves_nothing(user_env, tmp_path: Path) -> None:
    store = Store()
    runs = tmp_path / "runs"
    spec = launch.prepare(
        store,
        "tiny",
        "dev",
        nodes=1,
        name="x",
        time_limit=None,
        overrides=[f"cluster.runs_root={runs}"],
    )
    with pytest.raises(OlmoctlError, match="boom"):
        launch.submit_attempt(store, spec, FakeBackend(fail=True), new_run=True)
    assert store.run_names() == []
    assert store.connect().execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 0
    assert not (runs / "x").exists()


def test_status_queries_once_for_many_attempts(user_env, tmp_path: Path, monkeypatch) -> None:
    store = Store()
    fake = FakeBackend()
    for i in range(25):
        spec = launch.prepare(
            store,
            "tiny",
            "dev",
            nodes=1,
            name=f"r{i}",
            time_limit=None,
            overrides=[f"cluster.runs_root={tmp_path}"],
        )
        launch.submit_attempt(store, spec, fake, new_run=True)
    monkeypatch.setattr(status, "backend_for", lambda sched: fake)
    info = status.refresh(store)
    assert info.queries == 1 and len(fake.queries) == 1 and len(fake.queries[0]) == 25
    assert {r["state"] for r in status.overview(store)} == {"RUNNING"}


def test_crashed_launch_is_recovered(user_env, tmp_path: Path, monkeypatch) -> None:
    store = Store()
    spec = launch.prepare(
        store,
        "tiny",
        "dev",
        nodes=1,
        name="c",
        time_limit=None,
        overrides=[f"cluster.runs_root={tmp_path}"],
    )
    fake = FakeBackend()
    launch.submit_attempt(store, spec, fake, new_run=True)
    with store.tx() as tx:  # as if olmoctl died between recording and submitting
        for a in tx.attempts("c"):
            tx.update_attempt(
                a.id, state=AttemptState.SUBMITTING, job_id=None, submitted_at=time.time() - 3600
            )
    monkeypatch.setattr(status, "backend_for", lambda sched: fake)
    status.refresh(store)
    assert store.last_attempt("c").state == "SUBMIT_FAILED"


@pytest.mark.parametrize("command", ["status", "logs", "cancel"])
def test_unknown_run_name_suggests(cli, user_env, tmp_path: Path, command: str) -> None:
    store = Store()
    spec = launch.prepare(
        store,
        "tiny",
        "dev",
        nodes=1,
        name="tiny-alpha",
        time_limit=None,
        overrides=[f"cluster.runs_root={tmp_path}"],
    )
    launch.submit_attempt(store, spec, FakeBackend(), new_run=True)
    store.close()
    res = cli(command, "tiny-alpah")
    assert res.code == 2
    assert "no run named 'tiny-alpah'; did you mean 'tiny-alpha'?" in res.err


def test_existing_run_name_is_refused(user_env, tmp_path: Path) -> None:
    store = Store()
    kw = dict(nodes=1, time_limit=None, overrides=[f"cluster.runs_root={tmp_path}"])
    spec = launch.prepare(store, "tiny", "dev", name="same", **kw)
    launch.submit_attempt(store, spec, FakeBackend(), new_run=True)
    with pytest.raises(UsageError, match="run 'same' already exists"):
        launch.prepare(store, "tiny", "dev", name="same", **kw)
    auto = launch.prepare(store, "tiny", "dev", name=None, **kw)
    assert auto.name == "tiny-dev"
    launch.submit_attempt(store, auto, FakeBackend(), new_run=True)
    assert launch.prepare(store, "tiny", "dev", name=None, **kw).name == "tiny-dev-2"


def test_unreachable_cluster_does_not_hide_the_others(user_env, tmp_path, monkeypatch) -> None:
    store = Store()
    ok, down = FakeBackend(), FakeBackend()
    for name, cluster, backend in (("a", "dev", down), ("b", "local", ok)):
        spec = launch.prepare(store, "tiny", cluster, nodes=1, name=name, time_limit=None,
                              overrides=[f"cluster.runs_root={tmp_path}"])  # fmt: skip
        launch.submit_attempt(store, spec, backend, new_run=True)

    def failing(job_ids):
        raise OlmoctlError("sacct did not answer within 60 s")

    down.query = failing
    monkeypatch.setattr(status, "backend_for", lambda sched: ok if sched == "local" else down)
    info = status.refresh(store)
    assert info.notes == ["cluster 'dev': sacct did not answer within 60 s; its runs show "
                          "their last known state"]  # fmt: skip
    states = {r["name"]: r["state"] for r in status.overview(store)}
    assert states == {"a": "PENDING", "b": "RUNNING"}
    with pytest.raises(OlmoctlError, match="did not answer"):
        status.refresh(store, run_names=["a"])  # asked about it: the error is the answer


def test_attempt_state_is_live() -> None:
    live = {"SUBMITTING", "PENDING", "RUNNING", "REQUEUED", "COMPLETING", "UNKNOWN"}
    for s in live:
        assert AttemptState(s).is_live, s
    for s in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "SUBMIT_FAILED"):
        assert not AttemptState(s).is_live, s
    # A word this olmoctl does not know (a newer Slurm) loads, keeps its text, is not live.
    odd = AttemptState("SOMETHING_NEW")
    assert odd == "SOMETHING_NEW" and str(odd) == "SOMETHING_NEW" and not odd.is_live
    assert AttemptState.PENDING == "PENDING"  # stored values are the plain words


def _spec(name: str, runs_root: Path):
    from olmoctl.core.launch import specs

    return specs.resolve(
        "tiny", "dev", nodes=1, name=name, overrides=[f"cluster.runs_root={runs_root}"]
    )


def test_a_classified_attempt_is_not_live(user_env, tmp_path: Path) -> None:
    store = Store()
    with store.tx() as tx:
        tx.create_run(_spec("r", tmp_path), state="PENDING")
        first = tx.add_attempt("r", cluster="dev", nodes=1, state="REQUEUED", job_id="7")
        tx.add_attempt("r", cluster="dev", nodes=1, state="PENDING", job_id="7", restart_index=1)
    a1, a2 = store.attempts("r")
    assert a1.attempt_no == first and a1.is_live and a2.is_live
    with store.tx() as tx:
        tx.update_attempt(a1.id, klass="NODE_FAIL", evidence={"why": "node2 down"})
    a1 = store.attempts("r")[0]
    assert a1.state == AttemptState.REQUEUED and not a1.is_live
    assert a1.evidence == {"why": "node2 down"}
    assert [a.attempt_no for a in store.live_attempts()] == [2]


def test_create_run_rolls_back_with_its_transaction(user_env, tmp_path: Path) -> None:
    store = Store()
    with pytest.raises(RuntimeError, match="later step"), store.tx() as tx:
        tx.create_run(_spec("r", tmp_path), state="SUBMITTING")
        tx.add_attempt("r", cluster="dev", nodes=1, state="SUBMITTING")
        assert tx.get_run("r") is not None  # visible inside the transaction
        raise RuntimeError("a later step failed")
    assert store.run_names() == [] and store.attempts("r") == []
    with store.tx() as tx:
        tx.create_run(_spec("r", tmp_path), state="WAITING", sweep="s", created_at=5.0)
    run = store.get_run("r")
    assert run is not None and (run.state, run.sweep, run.created_at) == ("WAITING", "s", 5.0)
    assert run.summary == {} and run.spec_data["name"] == "r"
    with pytest.raises(UsageError, match="already exists"), store.tx() as tx:
        tx.create_run(_spec("r", tmp_path), state="SUBMITTING")


def test_update_attempt_refuses_unknown_columns(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="not attempt fields"), store.tx() as tx:
        tx.update_attempt(1, **{"state = 'x' --": 1})
