"""The burn-in's verdict from the measured numbers (pure: no torch, no I/O).

Each check has a per-node value (the worst of the node's devices; a node's `pair` value is
its best neighbour, so a slow link blames a node only when every link of it is slow). The
limit of a check is max(min_ratio x the allocation's median, the profile's floor); a node
below it, or whose check failed or never reported, is bad. Training runs on the best `need`
healthy nodes (ranked by their weakest check relative to the median), kept in allocation
order; without enough of them the job requeues itself once without every bad node found.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from olmoctl.schemas.burnin import BurninConfig

UNITS = {
    "gemm": "TFLOP/s",
    "memory": "GB/s",
    "host_memory": "GB/s",
    "filesystem": "MB/s",
    "pair": "GB/s",
    "allreduce": "GB/s",
}


def floor_of(check: str, cfg: BurninConfig) -> float:
    return {
        "gemm": cfg.min_gemm_tflops,
        "memory": cfg.min_memory_gbps,
        "host_memory": cfg.min_memory_gbps,
        "filesystem": cfg.min_fs_mbps,
        "pair": cfg.min_pair_gbps,
        "allreduce": cfg.min_busbw_gbps,
    }.get(check, 0.0)


def measure(
    check: str, value: float | None = None, error: str | None = None, device: int | None = None
) -> dict[str, Any]:
    """One measured number (or the error that stopped the check), as events carry it."""
    out: dict[str, Any] = {"check": check, "value": value, "unit": UNITS.get(check, "")}
    if error is not None:
        out["error"] = error
    if device is not None:
        out["device"] = device
    return out


@dataclass
class Judgement:
    action: str  # schemas/burnin.ACTIONS
    use: list[str]
    spare: list[str]
    excluded: list[dict[str, Any]]  # {node, check, measured, expected, unit, reason}
    nodes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # judged checks
    note: str = ""
    # For the verdict file's exclude=: every node found bad in this job so far.
    exclude: list[str] = field(default_factory=list)
    allocation: list[str] = field(default_factory=list)  # every node, in allocation order

    def node_ok(self, node: str) -> bool:
        return all(m.get("ok") for m in self.nodes.get(node, [])) and bool(self.nodes.get(node))


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _node_values(
    nodes: list[str], reports: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, tuple[float | None, str | None]]]:
    """node -> check -> (worst value, first error) over the node's devices."""
    out: dict[str, dict[str, tuple[float | None, str | None]]] = {}
    for node in nodes:
        per: dict[str, tuple[float | None, str | None]] = {}
        for m in reports.get(node, []):
            check, value, err = m["check"], m.get("value"), m.get("error")
            old_v, old_e = per.get(check, (None, None))
            if err is not None or value is None:
                per[check] = (None, old_e or err or "no value")
            elif old_e is None:
                per[check] = (value if old_v is None else min(old_v, value), None)
        out[node] = per
    return out


def judge(
    nodes: list[str],
    reports: dict[str, list[dict[str, Any]]],
    missing: dict[str, str],
    cfg: BurninConfig,
    *,
    need: int,
    restart: int = 0,
    max_requeues: int = 3,
    earlier_excluded: list[str] | None = None,
    busbw_gbps: float | None = None,
) -> Judgement:
    """nodes: the allocation in order; reports: node -> its measures (schemas: `measure`);
    missing: node -> why it has no report (did not start, hung...)."""
    values = _node_values(nodes, reports)
    checks = sorted({c for per in values.values() for c in per})
    limits: dict[str, tuple[float, float | None, float]] = {}  # check -> (limit, median, ratio)
    for check in checks:
        got = [v for per in values.values() if (v := per.get(check, (None, None))[0]) is not None]
        med = statistics.median(got) if got else None
        ratio = cfg.fs_min_ratio if check == "filesystem" else cfg.min_ratio
        limit = max(ratio * med if med else 0.0, floor_of(check, cfg))
        limits[check] = (limit, med, ratio)

    judged: dict[str, list[dict[str, Any]]] = {}
    worst: dict[str, dict[str, Any]] = {}  # node -> the failure that names it
    score: dict[str, float] = {}
    for node in nodes:
        if node in missing:
            worst[node] = {
                "node": node,
                "check": "start",
                "measured": None,
                "expected": None,
                "unit": "",
                "reason": missing[node],
            }
            continue
        rows, ratios = [], []
        for check in checks:
            value, err = values[node].get(check, (None, "not run"))
            limit, med, factor = limits[check]
            ok = err is None and value is not None and value >= limit
            rows.append(
                {
                    "check": check,
                    "value": value,
                    "unit": UNITS.get(check, ""),
                    "limit": limit,
                    "median": med,
                    "ok": ok,
                    **({"error": err} if err else {}),
                }
            )
            ratio = (value / limit if limit else float("inf")) if value is not None else -1.0
            ratios.append(ratio)
            if ok:
                continue
            if err is not None:
                why = f"{check} failed: {err}"
            else:
                rel = f"{factor:g} x median {_fmt(med)}" if med else "floor"
                why = f"{check} {_fmt(value)} {UNITS.get(check, '')} < {_fmt(limit)} ({rel})"
            prev = worst.get(node)
            if prev is None or ratio < prev["_ratio"]:
                worst[node] = {
                    "node": node,
                    "check": check,
                    "measured": value,
                    "expected": limit,
                    "unit": UNITS.get(check, ""),
                    "reason": why,
                    "_ratio": ratio,
                }
        judged[node] = rows
        score[node] = min((r for r in ratios if r >= 0), default=float("inf"))
    excluded = [{k: v for k, v in worst[n].items() if k != "_ratio"} for n in nodes if n in worst]
    healthy = [n for n in nodes if n not in worst]
    note = ""
    if busbw_gbps is not None and busbw_gbps < cfg.min_busbw_gbps:
        note = (
            f"all-reduce bus bandwidth {_fmt(busbw_gbps)} GB/s < floor "
            f"{_fmt(cfg.min_busbw_gbps)} GB/s"
        )
    bad = [e["node"] for e in excluded]
    everyone = sorted(set(earlier_excluded or []) | set(bad))
    if len(healthy) >= need:
        best = set(sorted(healthy, key=lambda n: -score[n])[:need])
        use = [n for n in nodes if n in best]
        spare = [n for n in healthy if n not in best]
        return Judgement("train", use, spare, excluded, judged, note, everyone, nodes)
    if len(nodes) > 1 and len(bad) * 2 > len(nodes):
        note = (
            f"burn-in failed on {len(bad)} of {len(nodes)} nodes: that looks like the job's "
            "setup (thresholds, run directory, data), not the nodes; not requeueing"
        )
        return Judgement("fail", [], [], excluded, judged, note, everyone, nodes)
    if restart >= max_requeues:
        note = f"the job was requeued {restart} times already (cluster.max_requeues)"
        return Judgement("fail", [], [], excluded, judged, note, everyone, nodes)
    note = note or f"requeueing without {','.join(bad)}"
    return Judgement("requeue", [], [], excluded, judged, note, everyone, nodes)
