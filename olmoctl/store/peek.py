"""A read-only look at the store that neither creates nor migrates it, for commands that
only need to know whether there is anything to show (`status` on a store without runs loads
none of the store's row types or the scheduler code)."""

from __future__ import annotations

import os
from pathlib import Path


def has_runs(db: Path) -> bool:
    """True when the store file at `db` may hold runs: it exists and its runs table is not
    empty. Any doubt (a locked, foreign or damaged file) answers True, so the caller opens
    the store properly and reports what is wrong. A state directory or database file that
    is not safe to use (writable by others, a link...) is refused here too (StoreError)."""
    try:
        os.lstat(db.parent)
    except FileNotFoundError:
        # No state directory, not even a dangling link to one (a fresh user): nothing for
        # place.check_dir to refuse, and no sqlite3 or store module to load.
        return _never_a_store(db)
    except OSError:
        pass  # place.check_dir says what is wrong
    import sqlite3

    from olmoctl.store import place
    from olmoctl.store.errors import StoreError
    from olmoctl.store.schema import MIGRATIONS

    try:
        if place.check_dir(db.parent):
            place.check_db(db)
    except StoreError:
        return True  # the caller opens the store and says what is wrong
    if not db.exists():
        return _never_a_store(db)
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != len(MIGRATIONS):
                return True  # a newer schema (refused) or an older one (migrated)
            row = conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return True
    return row is not None


def run_names(db: Path, limit: int = 10_000) -> list[str]:
    """The run names in the store at `db`, newest first, read-only (never creates or
    migrates it); [] on any doubt. For shell completion, which must answer in milliseconds
    and never say anything on a TAB."""
    if not db.is_file():
        return []
    import sqlite3

    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=0.2)
        try:
            rows = conn.execute(
                "SELECT name FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [r[0] for r in rows if isinstance(r[0], str)]


def _never_a_store(db: Path) -> bool:
    """For a store file that does not exist: no runs (False), unless the path could never
    hold one (a file where a folder should be: True), which opening the store reports."""
    there = db.parent
    while not there.exists() and there != there.parent:
        there = there.parent
    return not there.is_dir()
