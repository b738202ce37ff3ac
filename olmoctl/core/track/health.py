"""Node health per cluster: which nodes failed, how often, and which to keep jobs off."""

from __future__ import annotations

from olmoctl.errors import UsageError, shown
from olmoctl.schemas.shellsafe import check_host
from olmoctl.store import Store


def excluded(store: Store, cluster: str, threshold: int) -> list[str]:
    """Nodes of `cluster` with at least `threshold` recorded failures. Each must be a Slurm
    host name (it goes into --exclude= and ExcNodeList=): a row that is not is refused."""
    nodes = sorted(r.node for r in store.nodes(cluster) if r.failures >= threshold)
    for node in nodes:
        try:
            check_host(node)
        except ValueError as e:
            raise UsageError(
                f"state store: node health of cluster {shown(cluster)}: {e}; remove it with "
                f"`olmoctl nodes --clear NODE` or fix the store"
            ) from None
    return nodes


def clear(store: Store, node: str, cluster: str | None = None) -> int:
    n = 0
    if store.exists():  # nothing to forget in a store that does not exist: create none
        with store.tx() as tx:
            n = tx.clear_node(node, cluster)
    if n == 0:
        known = sorted({r.node for r in store.nodes(cluster)})
        raise UsageError(
            f"node {shown(node)} has no recorded failures"
            + (f" (known: {', '.join(known)})" if known else "")
        )
    return n
