"""The state store is never damaged, never created by a command that changes nothing, and a
broken one is one line that names the file (issue 14, items 7, 10, 15). Real files, real
sqlite; the tests run as root, so refusals are checked by mode bits, not access errors."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from olmoctl.core.launch import submit as launch
from olmoctl.errors import OlmoctlError
from olmoctl.store import DB_NAME, MIGRATIONS, Store, StoreBusy, StoreError
from olmoctl.store import db as store_db


def _state(tmp_path: Path) -> Path:
    return tmp_path / "state"  # user_env's OLMOCTL_STATE_DIR


def _one_line(res, code: int) -> str:
    assert res.code == code, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert "Traceback" not in res.err
    return lines[0]


def _add_run(store: Store, name: str, runs: Path) -> None:
    spec = launch.prepare(
        store, "tiny", "dev", nodes=1, name=name, time_limit=None,
        overrides=[f"cluster.runs_root={runs}"],
    )  # fmt: skip
    with store.tx() as tx:
        tx.create_run(spec, state="COMPLETED")


# ---------------------------------------------------------------- item 15: nothing created
@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--json"],
        ["render", "tiny", "-c", "dev"],
        ["render", "tiny", "-c", "dev", "-o", "train.lr=oops"],
        ["launch", "tiny", "-c", "dev", "-o", "train.lr=oops"],
        ["launch", "no-such-recipe", "-c", "dev"],
        ["plan", "tiny", "-c", "lumi"],
        ["nodes"],
        ["nodes", "--clear", "n1"],
        ["watch", "--once"],
        ["cancel", "nope"],
        ["sweep", "tiny", "-c", "dev", "--grid", "train.lr=1e-3,2e-3", "--dry-run"],
        ["clusters"],
        ["recipes"],
        ["status", "nope"],
        ["resume", "nope"],
    ],
)
def test_commands_that_change_nothing_create_no_store(cli, tmp_path: Path, argv) -> None:
    res = cli(*argv)
    assert "Traceback" not in res.err
    assert not _state(tmp_path).exists(), (argv, res)
    if argv == ["status"]:
        assert res.code == 0 and "no runs yet" in res.out


def test_failed_first_launch_leaves_no_state_dir(user_env, tmp_path: Path) -> None:
    from tests.unit.test_store import FakeBackend

    store = Store()
    runs = tmp_path / "runs"
    spec = launch.prepare(
        store, "tiny", "dev", nodes=1, name="x", time_limit=None,
        overrides=[f"cluster.runs_root={runs}"],
    )  # fmt: skip
    with pytest.raises(OlmoctlError, match="boom"):
        launch.submit_attempt(store, spec, FakeBackend(fail=True), new_run=True)
    assert not _state(tmp_path).exists()
    assert not (runs / "x").exists()
    # an existing store keeps existing (and keeps its other runs) after a failed launch
    _add_run(store, "keep", runs)
    spec = spec.model_copy(update={"name": "y"})
    with pytest.raises(OlmoctlError, match="boom"):
        launch.submit_attempt(store, spec, FakeBackend(fail=True), new_run=True)
    assert Store().run_names() == ["keep"]


def test_first_change_creates_a_private_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "a" / "b")
    assert store.run_names() == [] and not (tmp_path / "a").exists()
    with store.tx() as tx:
        tx.log_action(None, "x")
    assert stat.S_IMODE(os.stat(store.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


# ------------------------------------------------------------- item 7: dir and file modes
@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o770, 0o720, 0o702])
def test_shared_state_dir_is_refused_not_chmodded(cli, tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, mode)
    for argv in (["status"], ["launch", "tiny", "-c", "dev", "--dry-run"]):
        line = _one_line(cli("--state-dir", str(shared), *argv), 2)
        assert str(shared) in line and "writable by" in line and "chmod go-w" in line
    assert stat.S_IMODE(os.stat(shared).st_mode) == mode  # left exactly as it was
    assert list(shared.iterdir()) == []
    with pytest.raises(StoreError), Store(shared).tx():
        pass


def test_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 12345, 12345)
    with pytest.raises(StoreError, match="belongs to another user"):
        Store(d).connect()


def test_existing_private_dir_is_used_as_is(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    d.mkdir()
    os.chmod(d, 0o755)  # not writable by others: fine, and not changed
    with Store(d).tx() as tx:
        tx.log_action(None, "x")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(d / DB_NAME).st_mode) == 0o600


def test_loose_database_files_are_tightened(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with store.tx() as tx:
        tx.log_action(None, "x")
    store.close()
    for suffix in ("", "-wal"):
        p = Path(f"{store.path}{suffix}")
        p.touch()
        os.chmod(p, 0o644)
    Store(tmp_path / "s").run_names()
    for suffix in ("", "-wal"):
        assert stat.S_IMODE(os.stat(f"{store.path}{suffix}").st_mode) == 0o600


def test_symlinked_state_dir_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with Store(tmp_path / "link").tx() as tx:
        tx.log_action(None, "x")
    assert (real / DB_NAME).is_file() and (tmp_path / "link").is_symlink()
    # a link to a shared directory is judged by its target
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (tmp_path / "link2").symlink_to(shared)
    with pytest.raises(StoreError, match="writable by everyone"):
        Store(tmp_path / "link2").connect()
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    with pytest.raises(StoreError, match="symbolic link to a missing directory"):
        Store(tmp_path / "dangling").connect()


@pytest.mark.parametrize("side", ["", "-wal", "-shm"])
def test_database_that_is_a_symlink_is_refused(tmp_path: Path, side: str) -> None:
    d = tmp_path / "s"
    d.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    Path(f"{d / DB_NAME}{side}").symlink_to(target)
    if side:
        (d / DB_NAME).touch(mode=0o600)
    with pytest.raises(StoreError, match="symbolic link"):
        Store(d).connect()
    with pytest.raises(StoreError, match="symbolic link"), Store(d).tx():
        pass
    assert target.read_bytes() == b""


# ----------------------------------------------------------- item 10: damaged store files
def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(8192))


def _truncated(p: Path) -> None:
    store = Store(p.parent)
    with store.tx() as tx:
        for i in range(300):
            tx.log_action(f"r{i}", "x", "y" * 2000)
    store.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    size = p.stat().st_size
    with open(p, "r+b") as f:
        f.truncate(size // 3)


def _foreign(p: Path) -> None:
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('a', '1')")
    conn.commit()
    conn.close()


def _foreign_versioned(p: Path) -> None:
    _foreign(p)
    conn = sqlite3.connect(p)
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def _newer(p: Path) -> None:
    store = Store(p.parent)
    store.connect(create=True).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    store.close()


def _directory(p: Path) -> None:
    p.mkdir()


def _fifo(p: Path) -> None:
    os.mkfifo(p)


BROKEN = {
    "garbage": (_garbage, "is damaged"),
    "truncated": (_truncated, "is damaged"),
    "foreign": (_foreign, "not an olmoctl store"),
    "foreign-versioned": (_foreign_versioned, "not an olmoctl store"),
    "newer": (_newer, "newer than this olmoctl knows"),
    "directory": (_directory, "is a directory"),
    "fifo": (_fifo, "is a FIFO"),
}


def _snapshot(d: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in sorted(d.iterdir()):
        out[p.name] = p.read_bytes() if p.is_file() and not p.is_fifo() else p.stat().st_mode
    return out


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_store_is_one_line_and_left_alone(cli, tmp_path: Path, kind: str) -> None:
    make, words = BROKEN[kind]
    d = _state(tmp_path)
    d.mkdir(mode=0o700)
    db = d / DB_NAME
    make(db)
    before = _snapshot(d)
    for argv in (["status"], ["launch", "tiny", "-c", "dev"], ["status", "x"], ["nodes"]):
        line = _one_line(cli(*argv), 2)
        assert str(db) in line and words in line, line
    # commands that need no store carry on (render/plan with a note naming the file)
    for argv in (["render", "tiny", "-c", "dev"], ["plan", "tiny", "-c", "lumi"]):
        res = cli(*argv)
        assert res.code == 0 and res.out, (argv, res)
        assert str(db) in res.err and "Traceback" not in res.err
    for argv in (["clusters"], ["recipes"], ["--help"]):
        res = cli(*argv)
        assert res.code == 0 and res.err == "", (argv, res)
    assert _snapshot(d) == before  # nothing written, nothing chmod-ed, nothing replaced


def test_empty_database_file_reads_as_empty(cli, tmp_path: Path) -> None:
    d = _state(tmp_path)
    d.mkdir(mode=0o700)
    (d / DB_NAME).write_bytes(b"")
    res = cli("status")
    assert res.code == 0 and "no runs yet" in res.out
    assert (d / DB_NAME).read_bytes() == b""  # a read wrote nothing
    with Store().tx() as tx:  # a change makes it a store
        tx.log_action(None, "x")
    assert Store().schema_version == len(MIGRATIONS)


def test_busy_store_is_one_line_exit_1(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 0.2)
    store = Store()
    _add_run(store, "r", tmp_path / "runs")
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy, match="is busy"), Store().tx():
            pass
        line = _one_line(cli("nodes", "--clear", "n1"), 1)
        assert str(store.path) in line and "busy" in line
        assert cli("status", "--json").code == 0  # readers are not blocked (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -------------------------------------------------------------- item 10: one damaged row
def _damage(store: Store, name: str, **cols: object) -> None:
    sets = ", ".join(f"{k} = ?" for k in cols)
    with store.tx() as tx:
        tx._db().execute(f"UPDATE runs SET {sets} WHERE name = ?", (*cols.values(), name))


@pytest.mark.parametrize(
    "cols",
    [
        {"summary_json": "{not json"},
        {"summary_json": "[1, 2]"},
        {"summary_json": json.dumps({"heartbeat_ts": "soon", "loss": [1]})},
        {"spec_json": "{not json"},
        {"spec_json": json.dumps({"name": "bad"})},
        {"created_at": "yesterday", "nodes": "many"},
    ],
)
def test_one_damaged_row_is_one_bad_row(cli, tmp_path: Path, cols) -> None:
    store = Store()
    for name in ("good1", "bad", "good2"):
        _add_run(store, name, tmp_path / "runs")
    with store.tx() as tx:  # a live attempt: status refreshes it, watch looks at it
        tx.add_attempt("bad", cluster="dev", nodes=1, state="PENDING", job_id="77")
    _damage(store, "bad", **cols)
    res = cli("status", "--json")
    assert res.code == 0, res
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert set(rows) == {"good1", "bad", "good2"}
    if "spec_json" not in cols:
        assert rows["bad"].get("damaged") and "note: run 'bad'" in res.err
    table = cli("status")
    assert table.code == 0 and "good1" in table.out and "good2" in table.out
    for argv in (["status", "bad"], ["resume", "bad"]):
        line = _one_line(cli(*argv), 1)
        assert "run 'bad'" in line and "damaged" in line, (argv, line)
    res = cli("watch", "bad", "--once")  # (its banner comes first: issue 14 item 14)
    assert res.code == 1 and "Traceback" not in res.err
    assert "run 'bad'" in res.err.splitlines()[-1] and "damaged" in res.err
    assert cli("status", "good1").code == 0


def test_damaged_row_does_not_stop_watching_the_others(cli, tmp_path: Path) -> None:
    store = Store()
    for name in ("good", "bad"):
        _add_run(store, name, tmp_path / "runs")
    _damage(store, "bad", spec_json="{}")
    res = cli("watch", "--once")
    assert res.code == 0 and "Traceback" not in res.err
