"""store.peek.has_runs: the read-only look `status` takes before loading the store."""

from __future__ import annotations

from pathlib import Path

from olmoctl.paths import DB_NAME
from olmoctl.store import Store
from olmoctl.store.peek import has_runs


def test_no_store_has_no_runs_and_stays_absent(tmp_path: Path) -> None:
    db = tmp_path / "state" / DB_NAME
    assert has_runs(db) is False
    assert not (tmp_path / "state").exists()


def test_empty_store_has_no_runs(tmp_path: Path) -> None:
    Store(tmp_path).connect(create=True)
    assert has_runs(tmp_path / DB_NAME) is False


def test_store_with_a_run(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.connect(create=True)
    store.close()
    import sqlite3

    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(
        "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, total_steps,"
        " created_at, updated_at) VALUES ('r','tiny','dev',1,'PENDING','/x','{}',1,0,0)"
    )
    conn.commit()
    conn.close()
    assert has_runs(tmp_path / DB_NAME) is True


def test_doubt_means_open_the_store(tmp_path: Path) -> None:
    garbage = tmp_path / DB_NAME
    garbage.write_bytes(b"not a database at all" * 100)
    assert has_runs(garbage) is True  # the caller opens it and says what is wrong
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert has_runs(blocker / "sub" / DB_NAME) is True  # can never exist: report it
