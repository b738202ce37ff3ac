"""The state store: one SQLite file indexing runs, attempts, checkpoints and node health.

WAL mode, every change in one `BEGIN IMMEDIATE` transaction (safe with several olmoctl
processes at once), a schema version with forward migrations, file mode 0600 in a 0700
directory (store/place.py checks both before use). The run directory stays the truth for
what a job did; this is the index.

Nothing is created until the first change: reading a store that does not exist reads an
empty one (in memory), so `status`, `render` or a launch that fails validation leave no
state directory behind. Every sqlite error becomes one line naming the file
(store/guard.py, store/errors.py).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from olmoctl import paths
from olmoctl.store import place
from olmoctl.store.attempts import AttemptReads, AttemptWrites
from olmoctl.store.errors import MOVE_ASIDE, StoreError
from olmoctl.store.guard import GuardedConnection
from olmoctl.store.nodes import NodeReads, NodeWrites
from olmoctl.store.records import RecordReads, RecordWrites
from olmoctl.store.runs import RunReads, RunWrites
from olmoctl.store.schema import DB_NAME, MIGRATIONS
from olmoctl.store.sweeps import SweepReads, SweepWrites
from olmoctl.store.watch import ActionReads, WatchWrites

# How long a statement waits for another process's write lock before "busy" (exit 1).
BUSY_TIMEOUT_S = 30.0


class Reads(RunReads, AttemptReads, SweepReads, NodeReads, ActionReads, RecordReads):
    """Every query."""


class Tx(Reads, RunWrites, AttemptWrites, SweepWrites, NodeWrites, WatchWrites, RecordWrites):
    """One open write transaction (Store.tx): every query and every change, applied
    together at its end or not at all."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _db(self) -> sqlite3.Connection:
        return self._conn


class Store(Reads):
    """Reads outside a transaction; changes through `with store.tx() as tx:`."""

    def __init__(self, state_dir: str | os.PathLike[str] | None = None) -> None:
        self.dir = paths.state_dir(state_dir)
        self.path = self.dir / DB_NAME
        self._conn: sqlite3.Connection | None = None
        self._memory = False  # reading a store that does not exist (yet)
        self._made_db = False  # this object created the database file...
        self._made_dirs: list[Path] = []  # ...and these directories, deepest first

    # -- connection -------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether there is a database file (possibly unusable) where the store lives."""
        return os.path.lexists(self.path)

    def connect(self, *, create: bool = False) -> sqlite3.Connection:
        """The store, checked (directory, file, schema). Without `create`, a store that
        does not exist (or an empty file) is read as an empty one and nothing is written."""
        if self._conn is not None and not (create and self._memory):
            return self._conn
        self.close()
        dir_exists = place.check_dir(self.dir)
        st = place.check_db(self.path) if dir_exists else None
        if not create and (st is None or st.st_size == 0):
            self._conn, self._memory = self._open(":memory:"), True
            self._migrate()
            return self._conn
        if not dir_exists:
            self._made_dirs = place.create_dir(self.dir)
        if st is None and place.create_db(self.path):
            self._made_db = True
        self._conn, self._memory = self._open(str(self.path)), False
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise
        return self._conn

    def _open(self, where: str) -> GuardedConnection:
        try:
            conn = sqlite3.connect(
                where, timeout=BUSY_TIMEOUT_S, isolation_level=None, factory=GuardedConnection
            )
        except sqlite3.Error as e:
            raise StoreError(
                f"state store {self.path} cannot be opened ({e}): {MOVE_ASIDE}"
            ) from None
        assert isinstance(conn, GuardedConnection)
        conn.store_path = self.path
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def check_writable(self) -> None:
        """Fail now (one line) if a change could not be recorded: the state directory is
        unsafe or cannot be created. Creates nothing."""
        if place.check_dir(self.dir):
            if not os.access(self.dir, os.W_OK | os.X_OK):
                raise StoreError(f"state directory {self.dir} is not writable")
            return
        p = self.dir
        while not os.path.lexists(p) and p != p.parent:
            p = p.parent
        if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
            raise StoreError(
                f"state directory {self.dir} is not writable: cannot create it under {p}"
            )

    def discard_if_new(self) -> None:
        """Take away the store this object created, if it still holds nothing (a first
        launch whose submission failed leaves no state directory behind). A store that
        any other process has written to is kept."""
        if not self._made_db or self._memory or self._conn is None:
            return
        conn = self._conn
        with contextlib.suppress(sqlite3.Error, StoreError):
            conn.execute("BEGIN IMMEDIATE")
            tables = [
                r[0]
                for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not r[0].startswith("sqlite_")
            ]
            if any(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in tables):
                conn.execute("ROLLBACK")
                return
            for suffix in ("", *place.SIDE_FILES):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            conn.execute("ROLLBACK")
        self.close()
        for suffix in place.SIDE_FILES:  # closing may have written them back
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._made_db = False
        for d in self._made_dirs:
            with contextlib.suppress(OSError):  # not empty: someone else's now
                d.rmdir()
        self._made_dirs = []

    def _db(self) -> sqlite3.Connection:
        return self.connect()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction; IMMEDIATE takes the write lock up front so two processes
        never both read-then-write the same rows."""
        conn = self.connect(create=True)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Tx(conn)
        except BaseException:
            with contextlib.suppress(sqlite3.Error, StoreError):  # keep the first error
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Bring the schema up to date; refuse a newer schema or another program's
        database (never add olmoctl's tables to someone else's file)."""
        conn = self._conn
        assert conn is not None
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        # Before any write, WAL mode or chmod: not someone else's file.
        self._check_schema(conn, version)
        if not self._memory:
            place.tighten(self.path)
            conn.execute("PRAGMA journal_mode = WAL")
        if version == len(MIGRATIONS):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another may have
            self._check_schema(conn, version)
            for i in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {i + 1}")
        except BaseException:
            with contextlib.suppress(sqlite3.Error, StoreError):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _check_schema(self, conn: sqlite3.Connection, version: int) -> None:
        if version > len(MIGRATIONS):
            raise StoreError(
                f"state store {self.path} has schema version {version}, newer than this "
                f"olmoctl knows ({len(MIGRATIONS)}): upgrade olmoctl, or {MOVE_ASIDE}"
            )
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        }
        # application_id: another program's mark; a negative user_version is never ours.
        foreign = version < 0 or conn.execute("PRAGMA application_id").fetchone()[0] != 0
        if (
            foreign
            or (version == 0 and tables)
            or (version > 0 and not {"runs", "attempts"} <= tables)
        ):
            shown = ", ".join(sorted(tables)[:5]) or "no tables"
            raise StoreError(
                f"state store {self.path} is not an olmoctl store (schema version {version}, "
                f"{shown}): {MOVE_ASIDE}"
            )

    @property
    def schema_version(self) -> int:
        version: int = self.connect().execute("PRAGMA user_version").fetchone()[0]
        return version
