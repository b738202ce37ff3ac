"""`olmoctl doctor`'s verdict: the ranks' reports (RUN_DIR/preflight/rank-R.json, written by
olmoctl.train.burnin.preflight) folded into one line per check. A check passes when it passed on
every rank that ran it; a failure names the first rank and node where it failed. Two
checks only the launcher can make: every rank reported (`ranks`), and each node's ranks
use as many distinct GPUs as the profile says (`gpus`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from olmoctl.schemas import preflight as pf
from olmoctl.schemas.preflight import RankReport

RANKS = "ranks"


@dataclass(frozen=True)
class Line:
    name: str
    ok: bool
    value: str = ""
    detail: str = ""
    skipped: bool = False


@dataclass
class Report:
    cluster: str
    job_id: str
    state: str  # the scheduler's last word on the job (COMPLETED, FAILED, ...)
    run_dir: str
    nodes: int
    world_size: int
    lines: list[Line] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(line.ok for line in self.lines)

    @property
    def failed(self) -> list[str]:
        return [line.name for line in self.lines if not line.ok]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checks"] = d.pop("lines")
        return {"ok": self.ok, **d}


def _ranks_line(world: int, reports: dict[int, RankReport], missing_why: dict[int, str]) -> Line:
    missing = [r for r in range(world) if r not in reports]
    value = f"{world - len(missing)}/{world} reported"
    if not missing:
        return Line(RANKS, True, value)
    first = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    why = f"rank {first}{more}: no report; {missing_why.get(first, 'no log either')}"
    return Line(RANKS, False, value, why)


def _gpu_line(line: Line, reports: dict[int, RankReport], gpus_per_node: int) -> Line:
    """Rank-level pass, then per node: distinct devices in use == gpus_per_node."""
    if not line.ok or line.skipped:
        return line
    per_node: dict[str, set[str]] = defaultdict(set)
    for rep in reports.values():
        if rep.device:
            per_node[rep.node].add(rep.device)
    for node, devices in sorted(per_node.items()):
        if len(devices) != gpus_per_node:
            why = f"{node}: its ranks use {len(devices)} distinct GPU(s), the profile says "
            why += f"gpus_per_node={gpus_per_node}"
            return Line(line.name, False, f"{len(devices)} on {node}", why)
    counts = sorted({len(d) for d in per_node.values()})
    return Line(line.name, True, f"{'/'.join(map(str, counts))} per node ({line.value})")


def _per_node(line: Line, got: list[tuple[int, str, pf.Check]]) -> Line:
    """A passed line whose value may differ by node (the interpreter and versions, NCCL's
    transport and NICs): each distinct value with the nodes that had it. Ranks of one job
    that imported different environments fail (issue 22 item 1)."""
    nodes: dict[str, list[str]] = defaultdict(list)
    for _, node, check in got:
        if not check.skipped and node not in nodes[check.value]:
            nodes[check.value].append(node)
    if len(nodes) <= 1:
        count = len(next(iter(nodes.values()), []))
        return Line(line.name, line.ok, f"{line.value} (every node: {count})", line.detail)
    parts = [f"{value} on {_nodes_text(names)}" for value, names in nodes.items()]
    if line.name == pf.IMPORTS:
        why = f"the nodes found {len(nodes)} different environments"
        return Line(line.name, False, "; ".join(parts), why)
    return Line(line.name, line.ok, "; ".join(parts), line.detail)


def _nodes_text(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more node(s)"


def fold(
    reports: dict[int, RankReport],
    world: int,
    gpus_per_node: int,
    missing_why: dict[int, str] | None = None,
) -> list[Line]:
    """One line per check, in the order the job ran them (rank 0's first)."""
    lines = [_ranks_line(world, reports, missing_why or {})]
    order: list[str] = []
    results: dict[str, list[tuple[int, str, pf.Check]]] = defaultdict(list)
    for rank in sorted(reports):
        rep = reports[rank]
        for check in rep.checks:
            if check.name not in results:
                order.append(check.name)
            results[check.name].append((rank, rep.node, check))
    unfinished = [r for r in sorted(reports) if not reports[r].done]
    if pf.DISTRIBUTED not in results and reports:
        order.append(pf.DISTRIBUTED)
    for name in order:
        got = results.get(name, [])
        if name == pf.DISTRIBUTED and unfinished:
            r = unfinished[0]
            why = f"rank {r} on {reports[r].node} never finished the all-reduce"
            lines.append(Line(name, False, f"{len(unfinished)} rank(s) unfinished", why))
            continue
        if not got:
            lines.append(Line(name, False, detail="no rank reported it"))
            continue
        failed = [(r, n, c) for r, n, c in got if not c.ok]
        if failed:
            r, node, c = failed[0]
            more = f" (and {len(failed) - 1} more rank(s))" if len(failed) > 1 else ""
            lines.append(Line(name, False, c.value, f"rank {r} on {node}: {c.detail}{more}"))
            continue
        ran = [c for _, _, c in got if not c.skipped]
        shown = ran[0] if ran else got[0][2]
        line = Line(name, True, shown.value, "" if ran else shown.detail, skipped=not ran)
        if name == pf.GPUS:
            line = _gpu_line(line, reports, gpus_per_node)
        elif name in (pf.IMPORTS, pf.TRANSPORT) and ran:
            line = _per_node(line, got)
        lines.append(line)
    return lines
