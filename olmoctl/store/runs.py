"""Runs (one row per run name) and the checkpoints found in their run directories."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from olmoctl.errors import UsageError, shown
from olmoctl.store.base import Queries
from olmoctl.store.models import Checkpoint, Run

if TYPE_CHECKING:  # the store reads a RunSpec's fields only; no pydantic import at runtime
    from olmoctl.schemas import RunSpec


class RunReads(Queries):
    def run_names(self) -> list[str]:
        rows = self._db().execute("SELECT name FROM runs ORDER BY created_at").fetchall()
        return [r["name"] for r in rows]

    def get_run(self, name: str) -> Run | None:
        row = self._db().execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()
        return Run.of(row) if row is not None else None

    def runs(
        self,
        *,
        state: str | None = None,
        cluster: str | None = None,
        since: float | None = None,
        sweep: str | None = None,
    ) -> list[Run]:
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        for col, val in (("state", state), ("cluster", cluster), ("sweep", sweep)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        return [Run.of(r) for r in self._db().execute(sql + " ORDER BY created_at", args)]

    def checkpoints(self, run_name: str, *, include_deleted: bool = False) -> list[Checkpoint]:
        """The run's checkpoints, oldest first: those still on disk at the last refresh
        (retention deletes old ones), or every one ever seen with `include_deleted`."""
        live = "" if include_deleted else " AND deleted_at IS NULL"
        rows = self._db().execute(
            f"SELECT * FROM checkpoints WHERE run_name = ?{live} ORDER BY step", (run_name,)
        )
        return [Checkpoint.of(r) for r in rows]


class RunWrites(Queries):
    def create_run(
        self,
        spec: RunSpec,
        *,
        state: str,
        sweep: str | None = None,
        created_at: float | None = None,
    ) -> None:
        """Record a new run (launch, and each point of a sweep); its name must be free."""
        now = time.time()
        if self._db().execute("SELECT 1 FROM runs WHERE name = ?", (spec.name,)).fetchone():
            raise UsageError(f"run {shown(spec.name)} already exists")
        self._db().execute(
            "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, "
            "total_steps, sweep, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                spec.name,
                spec.recipe.name,
                spec.cluster.name,
                spec.nodes,
                state,
                spec.run_dir,
                spec.model_dump_json(),
                spec.recipe.train.total_steps,
                sweep,
                now if created_at is None else created_at,
                now,
            ),
        )

    def delete_run(self, name: str) -> None:
        """The run and (ON DELETE CASCADE) its attempts, checkpoints and record."""
        self._db().execute("DELETE FROM runs WHERE name = ?", (name,))

    def set_run_state(self, name: str, state: str) -> None:
        self._db().execute(
            "UPDATE runs SET state = ?, updated_at = ? WHERE name = ?", (state, time.time(), name)
        )

    def set_run_spec(self, name: str, spec: RunSpec) -> None:
        """A resumed run's spec for its next attempts (node count, overrides, exclusions)."""
        self._db().execute(
            "UPDATE runs SET spec_json = ?, nodes = ? WHERE name = ?",
            (spec.model_dump_json(), spec.nodes, name),
        )

    def update_summary(self, name: str, summary: dict[str, Any]) -> None:
        self._db().execute(
            "UPDATE runs SET summary_json = ?, updated_at = ? WHERE name = ?",
            (json.dumps(summary), time.time(), name),
        )

    def record_checkpoint(
        self,
        run_name: str,
        step: int,
        path: str,
        complete: bool,
        nbytes: int | None = None,
        saved_at: float | None = None,
    ) -> None:
        self._db().execute(
            "INSERT INTO checkpoints (run_name, step, path, complete, bytes, saved_at) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(run_name, step) DO UPDATE SET "
            "path=excluded.path, complete=excluded.complete, bytes=excluded.bytes, "
            "saved_at=excluded.saved_at, deleted_at=NULL",
            (run_name, step, path, int(complete), nbytes, saved_at),
        )

    def mark_checkpoints_deleted(
        self, run_name: str, on_disk: list[int], at: float | None = None
    ) -> None:
        """Mark deleted every live checkpoint row of the run whose step is not `on_disk`
        (retention removed its folder). A folder seen again later is live again
        (record_checkpoint), so a listing that missed it only hides it until then."""
        marks = ",".join("?" * len(on_disk))
        self._db().execute(
            "UPDATE checkpoints SET deleted_at = ? WHERE run_name = ? AND deleted_at IS NULL"
            + (f" AND step NOT IN ({marks})" if on_disk else ""),
            (time.time() if at is None else at, run_name, *on_disk),
        )
