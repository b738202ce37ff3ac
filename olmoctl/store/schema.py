"""The store's schema: forward migrations, applied in order (PRAGMA user_version)."""

from __future__ import annotations

from olmoctl.paths import DB_NAME  # noqa: F401  (paths: `status` checks it without the store)

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
    # Reproducibility records (olmoctl.core.records.record): RUN_DIR/record.json, indexed here.
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
    # Burn-in (olmoctl.train.burnin): every node's measured numbers per job incarnation, and
    # on node_health the check that last failed it (measured vs expected).
    """
    CREATE TABLE IF NOT EXISTS node_checks (
        cluster TEXT NOT NULL,
        node TEXT NOT NULL,
        run_name TEXT NOT NULL,
        job_id TEXT NOT NULL,
        restart_index INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        checks_json TEXT NOT NULL DEFAULT '[]',
        at REAL NOT NULL,
        PRIMARY KEY (cluster, node, run_name, job_id, restart_index)
    );
    ALTER TABLE node_health ADD COLUMN last_check TEXT;
    ALTER TABLE node_health ADD COLUMN measured REAL;
    ALTER TABLE node_health ADD COLUMN expected REAL;
    ALTER TABLE node_health ADD COLUMN unit TEXT;
    """,
    # Retention (olmoctl.train.checkpoint.retention) deletes old checkpoint folders: a row
    # whose folder is gone keeps its history but is marked deleted, and readers skip it.
    """
    ALTER TABLE checkpoints ADD COLUMN deleted_at REAL;
    """,
    # A local job's id is a pid, and pids are reused: the identity recorded at submit
    # (olmoctl.jobid; backends/procs.py) tells the job from a later process with its pid.
    # NULL: none recorded (a Slurm job, or an older olmoctl): a local one is never signalled.
    """
    ALTER TABLE attempts ADD COLUMN job_identity TEXT;
    """,
]
