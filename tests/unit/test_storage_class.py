"""A full checkpoint filesystem as the launcher sees it: the STORAGE class, `watch` waiting
for room before it resumes, and `status RUN` naming the permanent checkpoints."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from olmoctl.core.supervise import watch as supervise
from olmoctl.core.supervise.space import room_for
from olmoctl.core.track import classify as cl
from olmoctl.core.track import status
from olmoctl.core.track.runs import spec_of
from olmoctl.schemas.contract import (
    COMPLETE_MARKER,
    checkpoints_root,
    is_permanent_step,
    step_dir_name,
)
from olmoctl.schemas.events import Exiting
from olmoctl.store import DB_NAME, MIGRATIONS, Store
from olmoctl.train.runtime.exit_codes import EXIT_STORAGE
from tests.unit.test_classify import _classify, _logs

LINE = (
    "no space left on /scratch (lustre) while saving step 20: needs ~14.2 GB, 3.1 GB free "
    "(checkpoints in /scratch/u/r/checkpoints; the previous complete checkpoint is kept)"
)


def test_storage_is_its_own_class_from_the_event_or_the_logs(tmp_path: Path) -> None:
    exiting = Exiting(reason="error", exit_status=EXIT_STORAGE, step=21, error=LINE)
    v = _classify(exit_code="74:0", exiting=exiting)
    assert (v.klass, v.reason) == (cl.STORAGE, LINE)
    assert v.evidence["needed_bytes"] == 14_200_000_000
    assert not v.infra
    # No event (rank 0 died before writing it): the rank log's line says it.
    logs = _logs(tmp_path, r1=f"step 20\nolmoctl.train: error: {LINE}\n")
    v = _classify(exit_code="74:0", rank_logs=logs)
    assert v.klass == cl.STORAGE and v.reason.startswith("no space left on /scratch")
    assert cl.needed_bytes("needs ~3.5 MB, 0.1 MB free") == 3_500_000
    # A code error that mentions space is still a code error.
    tb = "Traceback (most recent call last):\n  File x\nValueError: no space left\n"
    assert _classify(rank_logs=_logs(tmp_path, r0=tb)).klass == cl.CODE_ERROR


def _end_storage(store: Store, needed: int) -> None:
    with store.tx() as tx:
        a = tx.last_attempt("r")
        tx.update_attempt(
            a.id, state="FAILED", klass=cl.STORAGE, reason=LINE, ended_at=1.0,
            evidence={"needed_bytes": needed},
        )  # fmt: skip


def test_watch_resumes_a_full_disk_only_once_there_is_room(run: Store) -> None:
    policy = supervise.WatchPolicy(backoff_s=0)
    _end_storage(run, needed=1 << 60)  # more than any disk here
    done = supervise.tick(run, "me", policy, runs=["r"])
    assert done == [f"r: STORAGE is NOT retried until space exists: {LINE}"]
    assert supervise.tick(run, "me", policy, runs=["r"]) == []  # said once
    assert supervise.all_settled(run, ["r"], max_retries=5)
    assert len(run.attempts("r")) == 1

    _end_storage(run, needed=1000)  # space freed (the same attempt, a smaller need)
    assert not supervise.all_settled(run, ["r"], max_retries=5)
    done = supervise.tick(run, "me", policy, runs=["r"])
    assert len(done) == 1 and done[0].startswith("r: resumed after STORAGE as job ")
    assert len(run.attempts("r")) == 2


class _AskedFiles:
    """A cluster's files as watch sees them (local or through ssh): only free_bytes used."""

    def __init__(self, free: int | None) -> None:
        self.free = free
        self.asked: list[str] = []

    def free_bytes(self, path: str) -> int | None:
        self.asked.append(path)
        return self.free


@pytest.mark.parametrize(
    ("free", "needed", "expected"),
    [(2000, 1000, True), (1100, 1000, False), (None, 1000, None), (2000, None, None)],
)
def test_room_is_asked_of_the_clusters_filesystem(
    free: int | None, needed: int | None, expected: bool | None
) -> None:
    """A remote cluster's filesystem answers through its files (ssh: the login node's
    free_space op), so watch resumes a remote STORAGE ending once space exists there too."""
    files = _AskedFiles(free)
    assert room_for("/scratch/u/runs/r", needed, files) is expected
    assert files.asked == ([] if needed is None else ["/scratch/u/runs/r/checkpoints"])


def test_status_names_permanent_checkpoints(run: Store, tmp_path: Path, cli) -> None:
    spec = spec_of(run.get_run("r"))
    assert spec.recipe.checkpoint.permanent_interval_steps == 0
    with run.tx() as tx:
        data = spec.model_dump(mode="json")
        data["recipe"]["checkpoint"]["permanent_interval_steps"] = 20
        tx.set_run_spec("r", type(spec).model_validate(data))
    for step in (10, 20, 30, 40):  # on disk: a refresh marks rows without a folder deleted
        d = checkpoints_root(spec.run_dir) / step_dir_name(step)
        d.mkdir(parents=True)
        if step != 40:
            (d / COMPLETE_MARKER).touch()
    status.refresh(run, run_names=["r"])
    d = status.detail(run, "r")
    assert [(c["step"], c["permanent"]) for c in d["checkpoints"]] == [
        (10, False), (20, True), (30, False), (40, True),
    ]  # fmt: skip
    run.close()
    res = cli("status", "r")
    assert "checkpoints: 10, 20 (permanent), 30, 40 (torn) (permanent)" in res.out, res.out
    got = json.loads(cli("status", "r", "--json").out)["checkpoints"]
    assert [c["permanent"] for c in got] == [False, True, False, True]


@pytest.mark.parametrize(
    ("step", "every", "expected"), [(20, 10, True), (25, 10, False), (20, 0, False), (0, 5, False)]
)
def test_permanent_steps(step: int, every: int, expected: bool) -> None:
    assert is_permanent_step(step, every) is expected


def test_checkpoints_retention_deleted_are_not_shown(run: Store, cli) -> None:
    """A checkpoint folder retention deleted: its row is kept, marked deleted, and neither
    `status RUN` nor store.checkpoints lists it; a folder seen again is live again."""
    root = checkpoints_root(spec_of(run.get_run("r")).run_dir)
    for step in (10, 20, 30):
        (root / step_dir_name(step)).mkdir(parents=True)
        (root / step_dir_name(step) / COMPLETE_MARKER).touch()
    status.refresh(run, run_names=["r"])
    assert [c.step for c in run.checkpoints("r")] == [10, 20, 30]
    for step in (10, 20):  # retention (keep_last=1) after the save of step 30
        shutil.rmtree(root / step_dir_name(step))
    status.refresh(run, run_names=["r"])
    assert [c.step for c in run.checkpoints("r")] == [30]
    gone = [c for c in run.checkpoints("r", include_deleted=True) if c.deleted_at is not None]
    assert [c.step for c in gone] == [10, 20]
    assert [c["step"] for c in status.detail(run, "r")["checkpoints"]] == [30]
    run.close()
    res = cli("status", "r")
    line = res.out.split("checkpoints:")[1].splitlines()[0]  # that line, not the ledger's
    assert "checkpoints: 30" in res.out and "10" not in line, res.out
    (root / step_dir_name(20)).mkdir()  # seen again (a listing that missed it): live again
    status.refresh(run, run_names=["r"])
    assert [c.step for c in run.checkpoints("r")] == [20, 30]


def test_an_old_store_upgrades_with_its_checkpoints_live(tmp_path: Path) -> None:
    """A store from before the deleted_at column: its rows survive the upgrade, live."""
    conn = sqlite3.connect(tmp_path / DB_NAME)
    added = next(i for i, m in enumerate(MIGRATIONS) if "deleted_at" in m)
    for i, migration in enumerate(MIGRATIONS[:added]):
        conn.executescript(migration)
        conn.execute(f"PRAGMA user_version = {i + 1}")
    conn.execute(
        "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, "
        "total_steps, created_at, updated_at) VALUES ('o','x','c',1,'RUNNING','/d','{}',9,0,0)"
    )
    conn.execute("INSERT INTO checkpoints VALUES ('o', 5, '/d/checkpoints/s5', 1, NULL, NULL)")
    conn.commit()
    conn.close()
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS)
    assert [(c.step, c.deleted_at) for c in store.checkpoints("o")] == [(5, None)]
    with store.tx() as tx:
        tx.mark_checkpoints_deleted("o", [], at=1.0)
    assert store.checkpoints("o") == []
    assert store.checkpoints("o", include_deleted=True)[0].deleted_at == 1.0
    store.close()
