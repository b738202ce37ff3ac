"""Node health per cluster: failures blamed on each node, and what burn-ins measured."""

from __future__ import annotations

import json
import time
from typing import Any

from olmoctl.store.base import Queries
from olmoctl.store.models import NodeHealth


class NodeReads(Queries):
    def nodes(self, cluster: str | None = None) -> list[NodeHealth]:
        if cluster is None:
            rows = self._db().execute("SELECT * FROM node_health ORDER BY cluster, node")
        else:
            rows = self._db().execute(
                "SELECT * FROM node_health WHERE cluster = ? ORDER BY node", (cluster,)
            )
        return [NodeHealth.of(r) for r in rows]

    def node_checks(self, cluster: str, node: str | None = None) -> list[dict[str, Any]]:
        """Burn-in results (newest first): cluster, node, run_name, job_id, restart_index,
        ok, checks (the measured numbers), at."""
        sql = "SELECT * FROM node_checks WHERE cluster = ?"
        args: tuple[Any, ...] = (cluster,)
        if node is not None:
            sql += " AND node = ?"
            args += (node,)
        rows = self._db().execute(sql + " ORDER BY at DESC, node", args)
        out = []
        for r in rows:
            row = dict(r)
            try:
                row["checks"] = json.loads(row.pop("checks_json") or "[]")
            except ValueError:
                row["checks"] = []
            row["ok"] = bool(row["ok"])
            out.append(row)
        return out


class NodeWrites(Queries):
    def node_failure(self, cluster: str, node: str, reason: str) -> None:
        self._db().execute(
            "INSERT INTO node_health (cluster, node, failures, last_reason, last_at) "
            "VALUES (?,?,1,?,?) ON CONFLICT(cluster, node) DO UPDATE SET "
            "failures = failures + 1, last_reason = excluded.last_reason, "
            "last_at = excluded.last_at, last_check = NULL, measured = NULL, "
            "expected = NULL, unit = NULL",
            (cluster, node, reason, time.time()),
        )

    def node_check(
        self,
        cluster: str,
        node: str,
        *,
        run_name: str,
        job_id: str,
        restart_index: int,
        ok: bool,
        checks: list[dict[str, Any]],
        failed: dict[str, Any] | None = None,
    ) -> bool:
        """One node's burn-in in one job incarnation; recorded once (False if it was already).
        A failed one (`failed`: check, measured, expected, unit, reason) counts as a failure
        of the node, with what was measured."""
        cur = self._db().execute(
            "INSERT OR IGNORE INTO node_checks (cluster, node, run_name, job_id, restart_index, "
            "ok, checks_json, at) VALUES (?,?,?,?,?,?,?,?)",
            (cluster, node, run_name, job_id, restart_index, int(ok), json.dumps(checks),
             time.time()),
        )  # fmt: skip
        if cur.rowcount == 0:
            return False
        if not ok and failed is not None:
            self._db().execute(
                "INSERT INTO node_health (cluster, node, failures, last_reason, last_at, "
                "last_check, measured, expected, unit) VALUES (?,?,1,?,?,?,?,?,?) "
                "ON CONFLICT(cluster, node) DO UPDATE SET failures = failures + 1, "
                "last_reason = excluded.last_reason, last_at = excluded.last_at, "
                "last_check = excluded.last_check, measured = excluded.measured, "
                "expected = excluded.expected, unit = excluded.unit",
                (cluster, node, failed.get("reason"), time.time(), failed.get("check"),
                 _num(failed.get("measured")), _num(failed.get("expected")), failed.get("unit")),
            )  # fmt: skip
        return True

    def exclude_node(self, cluster: str, node: str, reason: str, failures: int) -> None:
        """Count the node as failed at least `failures` times (the cluster's exclusion
        threshold), so that later jobs keep off it; `reason` says why."""
        self._db().execute(
            "INSERT INTO node_health (cluster, node, failures, last_reason, last_at) "
            "VALUES (?,?,?,?,?) ON CONFLICT(cluster, node) DO UPDATE SET "
            "failures = MAX(failures, excluded.failures), last_reason = excluded.last_reason, "
            "last_at = excluded.last_at, last_check = NULL, measured = NULL, expected = NULL, "
            "unit = NULL",
            (cluster, node, failures, reason, time.time()),
        )

    def clear_node(self, node: str, cluster: str | None = None) -> int:
        """Forget a node's failures (on one cluster, or all); how many rows went."""
        if cluster is None:
            cur = self._db().execute("DELETE FROM node_health WHERE node = ?", (node,))
        else:
            cur = self._db().execute(
                "DELETE FROM node_health WHERE node = ? AND cluster = ?", (node, cluster)
            )
        return cur.rowcount


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
