"""Node health per cluster: which nodes failed, how often, and which to keep jobs off."""

from __future__ import annotations

from olmoctl.core.store import Store
from olmoctl.errors import UsageError


def excluded(store: Store, cluster: str, threshold: int) -> list[str]:
    """Nodes of `cluster` with at least `threshold` recorded failures."""
    return sorted(r["node"] for r in store.nodes(cluster) if r["failures"] >= threshold)


def clear(store: Store, node: str, cluster: str | None = None) -> int:
    with store.tx() as conn:
        if cluster is None:
            n = conn.execute("DELETE FROM node_health WHERE node = ?", (node,)).rowcount
        else:
            n = conn.execute(
                "DELETE FROM node_health WHERE node = ? AND cluster = ?", (node, cluster)
            ).rowcount
    if n == 0:
        known = sorted({r["node"] for r in store.nodes(cluster)})
        raise UsageError(
            f"node {node!r} has no recorded failures"
            + (f" (known: {', '.join(known)})" if known else "")
        )
    return n
