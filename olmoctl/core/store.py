"""The state store: one SQLite file indexing runs, attempts, checkpoints and node health.

WAL mode, every change in one `BEGIN IMMEDIATE` transaction (safe with several olmoctl
processes at once), a schema version with forward migrations, file mode 0600 in a 0700
directory. The run directory stays the truth for what a job did; this is the index.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from olmoctl import paths
from olmoctl.errors import UsageError

DB_NAME = "olmoctl.sqlite3"

# Forward migrations: entry i brings the schema from version i to i + 1. Never edit one
# that has shipped; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        name TEXT PRIMARY KEY,
        recipe TEXT NOT NULL,
        cluster TEXT NOT NULL,
        nodes INTEGER NOT NULL,
        state TEXT NOT NULL,
        run_dir TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        total_steps INTEGER NOT NULL,
        sweep TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        summary_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_name TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
        attempt_no INTEGER NOT NULL,
        job_id TEXT,
        cluster TEXT NOT NULL,
        nodes INTEGER NOT NULL,
        node_list TEXT,
        submitted_at REAL,
        started_at REAL,
        ended_at REAL,
        state TEXT NOT NULL,
        exit_code TEXT,
        reason TEXT,
        first_step INTEGER,
        last_step INTEGER,
        script TEXT,
        evidence_json TEXT NOT NULL DEFAULT '{}',
        UNIQUE (run_name, attempt_no)
    );
    CREATE INDEX attempts_state ON attempts(state);
    CREATE INDEX attempts_job ON attempts(cluster, job_id);
    CREATE TABLE checkpoints (
        run_name TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        path TEXT NOT NULL,
        complete INTEGER NOT NULL,
        bytes INTEGER,
        saved_at REAL,
        PRIMARY KEY (run_name, step)
    );
    CREATE TABLE node_health (
        cluster TEXT NOT NULL,
        node TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        last_reason TEXT,
        last_at REAL,
        PRIMARY KEY (cluster, node)
    );
    """,
    # 2: failure handling. Each Slurm requeue of a job is its own attempt (restart_index =
    # SLURM_RESTART_COUNT); klass is the classified ending; leases keep two `watch`
    # processes from acting on the same run; actions is watch's audit log.
    """
    ALTER TABLE attempts ADD COLUMN restart_index INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE attempts ADD COLUMN klass TEXT;
    CREATE TABLE leases (
        run_name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        run_name TEXT,
        action TEXT NOT NULL,
        detail TEXT
    );
    """,
    # Sweeps (olmoctl.core.sweep): the definition, its points (name + parameters) and the
    # job arrays submitted for it; the points themselves are ordinary runs (runs.sweep).
    """
    CREATE TABLE IF NOT EXISTS sweeps (
        name TEXT PRIMARY KEY,
        recipe TEXT NOT NULL,
        cluster TEXT NOT NULL,
        nodes INTEGER NOT NULL,
        max_parallel INTEGER NOT NULL,
        mode TEXT NOT NULL,
        definition_json TEXT NOT NULL,
        points_json TEXT NOT NULL,
        jobs_json TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS runs_sweep ON runs(sweep);
    """,
    # Reproducibility records (olmoctl.core.record): RUN_DIR/record.json, indexed here.
    """
    CREATE TABLE IF NOT EXISTS run_records (
        run_name TEXT PRIMARY KEY REFERENCES runs(name) ON DELETE CASCADE,
        from_run TEXT,
        olmoctl_version TEXT,
        git_commit TEXT,
        git_dirty INTEGER,
        source_sha256 TEXT,
        seed INTEGER,
        data_sha256 TEXT,
        indices_sha256 TEXT,
        record_json TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS run_records_commit ON run_records(git_commit);
    CREATE INDEX IF NOT EXISTS run_records_data ON run_records(data_sha256);
    """,
]

# Slurm states in which an attempt is still alive (queued, running or on its way out).
LIVE_STATES = frozenset(
    {
        "SUBMITTED",
        "PENDING",
        "RUNNING",
        "REQUEUED",
        "CONFIGURING",
        "COMPLETING",
        "SUSPENDED",
        "RESIZING",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "UNKNOWN",
    }
)


# An attempt's columns as users see them (status RUN, the run record), in display order.
ATTEMPT_FIELDS = (
    "attempt_no",
    "job_id",
    "restart_index",
    "state",
    "klass",
    "node_list",
    "submitted_at",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "first_step",
    "last_step",
)


class Store:
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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front so two processes
        never both read-then-write the same rows."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
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
        return self.connect().execute("PRAGMA user_version").fetchone()[0]

    # -- runs -------------------------------------------------------------------------
    def run_names(self) -> list[str]:
        rows = self.connect().execute("SELECT name FROM runs ORDER BY created_at").fetchall()
        return [r["name"] for r in rows]

    def get_run(self, name: str) -> sqlite3.Row | None:
        return self.connect().execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()

    def runs(
        self,
        *,
        state: str | None = None,
        cluster: str | None = None,
        since: float | None = None,
        sweep: str | None = None,
    ) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        for col, val in (("state", state), ("cluster", cluster), ("sweep", sweep)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        return self.connect().execute(sql + " ORDER BY created_at", args).fetchall()

    def set_run_state(self, conn: sqlite3.Connection, name: str, state: str) -> None:
        conn.execute(
            "UPDATE runs SET state = ?, updated_at = ? WHERE name = ?", (state, time.time(), name)
        )

    def update_summary(self, conn: sqlite3.Connection, name: str, summary: dict[str, Any]) -> None:
        conn.execute(
            "UPDATE runs SET summary_json = ?, updated_at = ? WHERE name = ?",
            (json.dumps(summary), time.time(), name),
        )

    # -- attempts ---------------------------------------------------------------------
    def attempts(self, run_name: str) -> list[sqlite3.Row]:
        return (
            self.connect()
            .execute("SELECT * FROM attempts WHERE run_name = ? ORDER BY attempt_no", (run_name,))
            .fetchall()
        )

    def last_attempt(self, run_name: str) -> sqlite3.Row | None:
        return (
            self.connect()
            .execute(
                "SELECT * FROM attempts WHERE run_name = ? ORDER BY attempt_no DESC LIMIT 1",
                (run_name,),
            )
            .fetchone()
        )

    def live_attempts(self, cluster: str | None = None) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(LIVE_STATES))
        # A classified attempt has ended, whatever its last Slurm word (e.g. REQUEUED).
        sql = f"SELECT * FROM attempts WHERE state IN ({marks}) AND klass IS NULL"
        args: list[Any] = sorted(LIVE_STATES)
        if cluster is not None:
            sql += " AND cluster = ?"
            args.append(cluster)
        return self.connect().execute(sql, args).fetchall()

    def add_attempt(self, conn: sqlite3.Connection, run_name: str, **fields: Any) -> int:
        no = conn.execute(
            "SELECT COALESCE(MAX(attempt_no), 0) + 1 FROM attempts WHERE run_name = ?", (run_name,)
        ).fetchone()[0]
        fields = {"run_name": run_name, "attempt_no": no, **fields}
        cols = ",".join(fields)
        conn.execute(
            f"INSERT INTO attempts ({cols}) VALUES ({','.join('?' * len(fields))})",
            list(fields.values()),
        )
        return no

    def update_attempt(self, conn: sqlite3.Connection, attempt_id: int, **fields: Any) -> None:
        if not fields:
            return
        sets = ",".join(f"{k} = ?" for k in fields)
        conn.execute(f"UPDATE attempts SET {sets} WHERE id = ?", [*fields.values(), attempt_id])

    # -- checkpoints and nodes ----------------------------------------------------------
    def record_checkpoint(
        self,
        conn: sqlite3.Connection,
        run_name: str,
        step: int,
        path: str,
        complete: bool,
        nbytes: int | None = None,
        saved_at: float | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO checkpoints (run_name, step, path, complete, bytes, saved_at) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(run_name, step) DO UPDATE SET "
            "path=excluded.path, complete=excluded.complete, bytes=excluded.bytes, "
            "saved_at=excluded.saved_at",
            (run_name, step, path, int(complete), nbytes, saved_at),
        )

    def checkpoints(self, run_name: str) -> list[sqlite3.Row]:
        return (
            self.connect()
            .execute("SELECT * FROM checkpoints WHERE run_name = ? ORDER BY step", (run_name,))
            .fetchall()
        )

    def node_failure(self, conn: sqlite3.Connection, cluster: str, node: str, reason: str) -> None:
        conn.execute(
            "INSERT INTO node_health (cluster, node, failures, last_reason, last_at) "
            "VALUES (?,?,1,?,?) ON CONFLICT(cluster, node) DO UPDATE SET "
            "failures = failures + 1, last_reason = excluded.last_reason, "
            "last_at = excluded.last_at",
            (cluster, node, reason, time.time()),
        )

    def nodes(self, cluster: str | None = None) -> list[sqlite3.Row]:
        if cluster is None:
            return (
                self.connect()
                .execute("SELECT * FROM node_health ORDER BY cluster, node")
                .fetchall()
            )
        return (
            self.connect()
            .execute("SELECT * FROM node_health WHERE cluster = ? ORDER BY node", (cluster,))
            .fetchall()
        )
