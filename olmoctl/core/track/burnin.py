"""What a job's burn-in found (its `burnin_node` / `burnin` events), into the store's node
health: every node's measured numbers once per job incarnation, and each node left out as a
failure of that node with the check, measured vs expected. Also the verdict of one
incarnation, for classifying its ending (a burn-in requeue, or a burn-in that gave up)."""

from __future__ import annotations

from typing import Any

from olmoctl.schemas.events import Burnin, BurninNode, Event
from olmoctl.schemas.shellsafe import is_host
from olmoctl.store import Run, Tx

# An attempt the burn-in ended: requeued without bad nodes, or stopped before training.
BURNIN = "BURNIN"


def record(tx: Tx, run: Run, events: list[Event]) -> int:
    """Every burn-in in `events` into node health (once per node and incarnation: reading
    the same events again changes nothing); how many nodes were new."""
    per_node = {
        (str(e.job_id), int(e.attempt or 0), e.node): e
        for e in events
        if isinstance(e, BurninNode) and e.node
    }
    new = 0
    for e in events:
        if not isinstance(e, Burnin) or e.job_id is None:
            continue
        job_id, restart = str(e.job_id), int(e.attempt or 0)
        left_out = {x.get("node"): x for x in e.excluded or [] if isinstance(x, dict)}
        for node in e.nodes or []:
            if not is_host(node):  # only real host names: they go into later --exclude=
                continue
            ne = per_node.get((job_id, restart, node))
            new += tx.node_check(
                run.cluster,
                node,
                run_name=run.name,
                job_id=job_id,
                restart_index=restart,
                ok=node not in left_out,
                checks=list(ne.checks or []) if ne is not None else [],
                failed=left_out.get(node),
            )
    return new


def verdict_of(events: list[Event], job_id: str | None, restart: int) -> Burnin | None:
    """The burn-in verdict of one incarnation of a job, if it wrote one."""
    found = None
    for e in events:
        if isinstance(e, Burnin) and str(e.job_id) == str(job_id) and (e.attempt or 0) == restart:
            found = e
    return found


def summary(b: Burnin) -> dict[str, Any]:
    """A verdict as `status RUN` shows it."""
    return {
        "job_id": b.job_id,
        "attempt": b.attempt,
        "action": b.action,
        "nodes": b.nodes,
        "use": b.use,
        "spare": b.spare,
        "excluded": b.excluded,
        "busbw_gbps": b.busbw_gbps,
        "seconds": b.seconds,
        "note": b.note,
    }


def ending(b: Burnin) -> tuple[str, str] | None:
    """(class, reason) of an incarnation whose burn-in did not lead to training."""
    if b.action not in ("requeue", "fail"):
        return None
    why = "; ".join(
        f"{x.get('node')}: {x.get('reason')}" for x in b.excluded or [] if isinstance(x, dict)
    )
    if b.action == "requeue":
        return BURNIN, f"burn-in requeued the job without bad nodes ({why})"
    return BURNIN, f"burn-in stopped the job: {b.note or why}"
