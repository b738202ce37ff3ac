"""How `status` looks: the runs table, one run in detail, a sweep's points (rich)."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from olmoctl.cli import options

_STYLE = {
    "COMPLETED": "green",
    "RUNNING": "cyan",
    "PENDING": "yellow",
    "FAILED": "red",
    "NODE_FAIL": "red",
    "TIMEOUT": "magenta",
    "CANCELLED": "dim",
    "OUT_OF_MEMORY": "red",
}
_SPARK = "▁▂▃▄▅▆▇█"


def _fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "-"
    return format(v, spec) if spec else str(v)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def sparkline(values: list[float], width: int = 40) -> str:
    if not values:
        return ""
    if len(values) > width:  # keep the shape: sample evenly
        values = [values[int(i * len(values) / width)] for i in range(width)]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(_SPARK[int((v - lo) / span * (len(_SPARK) - 1))] for v in values)


def _console() -> Console:
    # Piped output (CI logs, `| less`) gets a wide table instead of rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


_FINAL = {"COMPLETED", "CANCELLED", "SUBMIT_FAILED"}


def most_relevant(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Unfinished runs first, then the newest; shown in creation order."""
    ranked = sorted(rows, key=lambda r: (r["state"] in _FINAL, -(r["created_at"] or 0)))
    keep = {id(r) for r in ranked[:n]}
    return [r for r in rows if id(r) in keep]


def table(rows: list[dict[str, Any]]) -> None:
    console = _console()
    if not rows:
        console.print(options.NO_RUNS)
        return
    t = Table(title="olmoctl runs")
    for col in (
        "run",
        "recipe",
        "cluster",
        "state",
        "att",
        "nodes",
        "step",
        "loss",
        "tok/s",
        "ckpt",
        "heartbeat",
    ):
        t.add_column(col)
    for r in rows:
        state = r["state"]
        t.add_row(
            r["name"],
            r["recipe"],
            r["cluster"],
            f"[{_STYLE.get(state, 'white')}]{state}[/]",
            str(r["attempts"]),
            r["node_list"] or str(r["nodes"]),
            f"{_fmt(r['step'])}/{r['total_steps']}",
            _fmt(r["loss"], ".4f"),
            _fmt(r["tokens_per_s"], ",.0f"),
            _fmt(r["last_checkpoint"]),
            _age(r["heartbeat_age_s"]),
        )
    console.print(t)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def detail(d: dict[str, Any]) -> None:
    console = _console()
    console.print(
        f"[bold]{d['name']}[/]  {d['recipe']} on {d['cluster']}  "
        f"[{_STYLE.get(d['state'], 'white')}]{d['state']}[/]  "
        f"step {_fmt(d['step'])}/{d['total_steps']}  loss {_fmt(d['loss'], '.4f')}"
    )
    console.print(f"run dir: {d['run_dir']}")
    if d.get("eval_loss"):
        sets = ", ".join(
            f"{name} {loss:.4f} (perplexity {math.exp(min(loss, 700)):.2f})"
            for name, loss in d["eval_loss"].items()
        )
        console.print(f"eval at step {_fmt(d.get('eval_step'))}: {sets}")
    t = Table(title="attempts")
    for col in (
        "#",
        "job",
        "state",
        "class",
        "nodes",
        "submitted",
        "started",
        "ended",
        "exit",
        "reason",
    ):
        t.add_column(col)
    for a in d["attempt_list"]:
        t.add_row(
            str(a["attempt_no"]),
            _fmt(a["job_id"]),
            a["state"],
            _fmt(a.get("klass")),
            _fmt(a["node_list"]),
            _when(a["submitted_at"]),
            _when(a["started_at"]),
            _when(a["ended_at"]),
            _fmt(a["exit_code"]),
            _fmt(a["reason"]),
        )
    console.print(t)
    ckpts = d["checkpoints"]
    if ckpts:
        parts = [f"{c['step']}{'' if c['complete'] else ' (torn)'}" for c in ckpts]
        console.print("checkpoints: " + ", ".join(parts))
    g = d.get("goodput") or {}
    if g.get("goodput") is not None:
        console.print(
            f"goodput {g['goodput']:.1%} of {g['wall_s']:.0f}s: queued {g['queued_s']:.0f}s, "
            f"recomputed {g['recomputed_s']:.0f}s ({g['recomputed_steps']} steps), "
            f"other {g['other_s']:.0f}s"
        )
    sg = d.get("straggler")
    if sg and sg.get("ratio") is not None:
        secs = f"{_fmt(sg['seconds'], '.3g')}s vs {_fmt(sg['median_s'], '.3g')}s"
        console.print(
            f"straggler: {escape(str(sg['node']))} (rank {sg['rank']}) {sg['ratio']:.2f}x "
            f"the median compute per step ({secs}) at step {sg['step']}"
        )
    if d.get("nodes_excluded"):
        console.print(f"excluded nodes: {', '.join(d['nodes_excluded'])}")
    for b in d.get("burnin") or []:  # what each start's burn-in decided, and why
        out = "; ".join(f"{x.get('node')} left out: {x.get('reason')}" for x in b["excluded"] or [])
        on = ",".join(b["use"] or []) or "-"
        line = f"burn-in (job {b['job_id']}.{b['attempt']}): {b['action']} on {on}"
        console.print(escape(line + (f"; {out}" if out else "")))
    losses = [loss for _, loss in d["losses"]]
    if losses:
        console.print(f"loss {losses[0]:.3f} {sparkline(losses)} {losses[-1]:.3f}")


def sweep_table(sweep: str, rows: list[dict[str, Any]]) -> None:
    """`status --sweep`: one line per point, its parameters as columns, best loss first."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r["params"] if k not in keys]
    t = Table(title=f"sweep {sweep} (best loss first)")
    for col in ("run", *keys, "state", "step", "loss", "best"):
        t.add_column(col)
    for r in rows:
        state = r["state"]
        t.add_row(
            r["name"],
            *(r["params"].get(k, "-") for k in keys),
            f"[{_STYLE.get(state, 'white')}]{state}[/]",
            f"{_fmt(r['step'])}/{r['total_steps']}",
            _fmt(r["loss"], ".4f"),
            _fmt(r["best_loss"], ".4f"),
        )
    _console().print(t)
