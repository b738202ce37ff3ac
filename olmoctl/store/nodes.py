"""Node health per cluster: failures blamed on each node."""

from __future__ import annotations

import time

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


class NodeWrites(Queries):
    def node_failure(self, cluster: str, node: str, reason: str) -> None:
        self._db().execute(
            "INSERT INTO node_health (cluster, node, failures, last_reason, last_at) "
            "VALUES (?,?,1,?,?) ON CONFLICT(cluster, node) DO UPDATE SET "
            "failures = failures + 1, last_reason = excluded.last_reason, "
            "last_at = excluded.last_at",
            (cluster, node, reason, time.time()),
        )

    def exclude_node(self, cluster: str, node: str, reason: str, failures: int) -> None:
        """Count the node as failed at least `failures` times (the cluster's exclusion
        threshold), so that later jobs keep off it; `reason` says why."""
        self._db().execute(
            "INSERT INTO node_health (cluster, node, failures, last_reason, last_at) "
            "VALUES (?,?,?,?,?) ON CONFLICT(cluster, node) DO UPDATE SET "
            "failures = MAX(failures, excluded.failures), last_reason = excluded.last_reason, "
            "last_at = excluded.last_at",
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
