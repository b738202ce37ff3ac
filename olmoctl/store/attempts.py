"""Attempts: one row per incarnation of a run's job (Slurm requeues keep the job id)."""

from __future__ import annotations

import json
from typing import Any

from olmoctl.jobid import identity_of
from olmoctl.store.base import Queries
from olmoctl.store.models import LIVE_STATES, Attempt

# Columns update_attempt may set (evidence: a dict, stored as evidence_json).
_SETTABLE = frozenset(
    {
        "job_id",
        "node_list",
        "submitted_at",
        "started_at",
        "ended_at",
        "state",
        "exit_code",
        "reason",
        "first_step",
        "last_step",
        "script",
        "evidence",
        "restart_index",
        "klass",
        "cluster",
        "nodes",
    }
)


class AttemptReads(Queries):
    def attempts(self, run_name: str) -> list[Attempt]:
        rows = self._db().execute(
            "SELECT * FROM attempts WHERE run_name = ? ORDER BY attempt_no", (run_name,)
        )
        return [Attempt.of(r) for r in rows]

    def last_attempt(self, run_name: str) -> Attempt | None:
        row = (
            self._db()
            .execute(
                "SELECT * FROM attempts WHERE run_name = ? ORDER BY attempt_no DESC LIMIT 1",
                (run_name,),
            )
            .fetchone()
        )
        return Attempt.of(row) if row is not None else None

    def live_attempts(self, cluster: str | None = None) -> list[Attempt]:
        """Attempts the scheduler may still change (SUBMITTING ones: submitting_attempts)."""
        marks = ",".join("?" * len(LIVE_STATES))
        # A classified attempt has ended, whatever its last Slurm word (e.g. REQUEUED).
        sql = f"SELECT * FROM attempts WHERE state IN ({marks}) AND klass IS NULL"
        args: list[Any] = sorted(LIVE_STATES)
        if cluster is not None:
            sql += " AND cluster = ?"
            args.append(cluster)
        return [Attempt.of(r) for r in self._db().execute(sql, args)]

    def submitting_attempts(self) -> list[Attempt]:
        """Attempts recorded but not (yet) known to be submitted."""
        rows = self._db().execute("SELECT * FROM attempts WHERE state = 'SUBMITTING'")
        return [Attempt.of(r) for r in rows]

    def job_attempts(self, run_name: str, job_id: str) -> list[Attempt]:
        """One job's incarnations, oldest first."""
        rows = self._db().execute(
            "SELECT * FROM attempts WHERE job_id = ? AND run_name = ? ORDER BY restart_index",
            (job_id, run_name),
        )
        return [Attempt.of(r) for r in rows]

    def last_attempts(self) -> dict[str, tuple[Attempt, int]]:
        """Every run's last attempt and its number of attempts, in one query."""
        rows = self._db().execute(
            "SELECT a.*, c.n AS n_attempts FROM attempts a JOIN (SELECT run_name, "
            "COUNT(*) AS n, MAX(attempt_no) AS m FROM attempts GROUP BY run_name) c "
            "ON a.run_name = c.run_name AND a.attempt_no = c.m"
        )
        return {r["run_name"]: (Attempt.of(r), r["n_attempts"]) for r in rows}

    def ended_attempts(self, cluster: str) -> list[Attempt]:
        """Attempts on `cluster` that started and ended (for observed node MTBF)."""
        rows = self._db().execute(
            "SELECT * FROM attempts WHERE cluster = ? "
            "AND started_at IS NOT NULL AND ended_at IS NOT NULL",
            (cluster,),
        )
        return [Attempt.of(r) for r in rows]


class AttemptWrites(Queries):
    def add_attempt(self, run_name: str, **fields: Any) -> int:
        """A new attempt numbered after the run's last; returns its number."""
        _check(fields)
        no = (
            self._db()
            .execute(
                "SELECT COALESCE(MAX(attempt_no), 0) + 1 FROM attempts WHERE run_name = ?",
                (run_name,),
            )
            .fetchone()[0]
        )
        fields = {"run_name": run_name, "attempt_no": no, **_encode(fields)}
        cols = ",".join(fields)
        self._db().execute(
            f"INSERT INTO attempts ({cols}) VALUES ({','.join('?' * len(fields))})",
            list(fields.values()),
        )
        return int(no)

    def update_attempt(self, attempt_id: int, **fields: Any) -> None:
        if not fields:
            return
        _check(fields)
        fields = _encode(fields)
        sets = ",".join(f"{k} = ?" for k in fields)
        self._db().execute(
            f"UPDATE attempts SET {sets} WHERE id = ?", [*fields.values(), attempt_id]
        )

    def set_submitted(
        self, run_name: str, attempt_no: int, job_id: str | None, script: str
    ) -> None:
        """The scheduler took the attempt: its job id (and identity), the text it submitted,
        PENDING."""
        self._db().execute(
            "UPDATE attempts SET job_id = ?, job_identity = ?, state = 'PENDING', script = ? "
            "WHERE run_name = ? AND attempt_no = ?",
            (job_id, identity_of(job_id), script, run_name, attempt_no),
        )

    def delete_attempt(self, run_name: str, attempt_no: int) -> None:
        self._db().execute(
            "DELETE FROM attempts WHERE run_name = ? AND attempt_no = ?", (run_name, attempt_no)
        )


def _check(fields: dict[str, Any]) -> None:
    # Column names go into the SQL text: only known ones.
    unknown = set(fields) - _SETTABLE
    if unknown:
        raise ValueError(f"not attempt fields: {sorted(unknown)}")


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    fields = {**fields}
    if "evidence" in fields:
        fields["evidence_json"] = json.dumps(fields.pop("evidence"))
    if "job_id" in fields:  # a new job id: its identity, or none (never the old one's)
        fields["job_identity"] = identity_of(fields["job_id"])
    return fields
