"""Sweeps: the definition, its points and job arrays (the points are ordinary runs)."""

from __future__ import annotations

import json
from typing import Any

from olmoctl.store.base import Queries
from olmoctl.store.models import WAITING, Sweep


class SweepReads(Queries):
    def get_sweep(self, name: str) -> Sweep | None:
        row = self._db().execute("SELECT * FROM sweeps WHERE name = ?", (name,)).fetchone()
        return Sweep.of(row) if row is not None else None

    def sweep_names(self) -> list[str]:
        return [r["name"] for r in self._db().execute("SELECT name FROM sweeps")]

    def waiting_sweeps(self) -> list[str]:
        """Sweeps with points still to submit."""
        rows = self._db().execute(
            "SELECT DISTINCT sweep FROM runs WHERE state = ? AND sweep IS NOT NULL", (WAITING,)
        )
        return [r["sweep"] for r in rows]


class SweepWrites(Queries):
    def create_sweep(
        self,
        name: str,
        *,
        recipe: str,
        cluster: str,
        nodes: int,
        max_parallel: int,
        mode: str,
        definition: dict[str, Any],
        points: list[dict[str, Any]],
        created_at: float,
    ) -> None:
        self._db().execute(
            "INSERT INTO sweeps (name, recipe, cluster, nodes, max_parallel, mode, "
            "definition_json, points_json, jobs_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                name,
                recipe,
                cluster,
                nodes,
                max_parallel,
                mode,
                json.dumps(definition),
                json.dumps(points),
                "[]",
                created_at,
            ),
        )

    def delete_sweep(self, name: str) -> None:
        """The sweep and every run recorded for it."""
        self._db().execute("DELETE FROM runs WHERE sweep = ?", (name,))
        self._db().execute("DELETE FROM sweeps WHERE name = ?", (name,))

    def add_sweep_job(self, name: str, entry: dict[str, Any]) -> None:
        """Note a job array submitted for the sweep."""
        row = self._db().execute("SELECT jobs_json FROM sweeps WHERE name = ?", (name,)).fetchone()
        jobs = [*json.loads(row["jobs_json"]), entry]
        self._db().execute(
            "UPDATE sweeps SET jobs_json = ? WHERE name = ?", (json.dumps(jobs), name)
        )
