"""The state store: one SQLite file indexing runs, attempts, checkpoints and node health.

WAL mode, every change in one `BEGIN IMMEDIATE` transaction (safe with several olmoctl
processes at once), a schema version with forward migrations, file mode 0600 in a 0700
directory. The run directory stays the truth for what a job did; this is the index.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from olmoctl import paths
from olmoctl.errors import UsageError
from olmoctl.store.attempts import AttemptReads, AttemptWrites
from olmoctl.store.nodes import NodeReads, NodeWrites
from olmoctl.store.records import RecordReads, RecordWrites
from olmoctl.store.runs import RunReads, RunWrites
from olmoctl.store.schema import DB_NAME, MIGRATIONS
from olmoctl.store.sweeps import SweepReads, SweepWrites
from olmoctl.store.watch import ActionReads, WatchWrites


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

    # -- connection -------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise UsageError(f"state directory {self.dir} is not writable: {e}") from None
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as e:
            raise UsageError(f"state directory {self.dir} is not writable: {e}") from None
        self._conn = conn
        self._migrate()
        return conn

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
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield Tx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise UsageError(
                    f"state store {self.path} has schema version {version}, newer than this "
                    f"olmoctl knows ({len(MIGRATIONS)}): upgrade olmoctl"
                )
            for i in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {i + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        version: int = self.connect().execute("PRAGMA user_version").fetchone()[0]
        return version
