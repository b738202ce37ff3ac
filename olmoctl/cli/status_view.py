"""How `status` looks: the runs table, one run in detail, a sweep's points (rich)."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from rich.console import Console
from rich.text import Text

from olmoctl.cli import options, text
from olmoctl.cli.text import data

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
    try:
        return format(v, spec) if spec else str(v)
    except (TypeError, ValueError):  # a value read back from a run dir or store is data
        return str(v)


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
    columns = ("run", "recipe", "cluster", "state", "att", "nodes", "step", "loss", "tok/s",
               "ckpt", "heartbeat")  # fmt: skip
    t = text.table("olmoctl runs", columns, names=("run", "recipe", "cluster"))
    for r in rows:
        t.add_row(
            data(r["name"]),
            data(r["recipe"]),
            data(r["cluster"]),
            _state(r["state"]),
            data(r["attempts"]),
            data(r["node_list"] or r["nodes"]),
            data(f"{_fmt(r['step'])}/{r['total_steps']}"),
            data(_fmt(r["loss"], ".4f")),
            data(_fmt(r["tokens_per_s"], ",.0f")),
            data(_fmt(r["last_checkpoint"])),
            data(_age(r["heartbeat_age_s"])),
        )
    text.show(console, t)


def _state(state: Any) -> Text:
    return data(state, _STYLE.get(str(state), "white"))


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def detail(d: dict[str, Any]) -> None:
    console = _console()
    console.print(
        Text.assemble(
            data(d["name"], "bold"),
            data(f"  {d['recipe']} on {d['cluster']}  "),
            _state(d["state"]),
            data(f"  step {_fmt(d['step'])}/{d['total_steps']}  loss {_fmt(d['loss'], '.4f')}"),
        )
    )
    console.print(data(f"run dir: {d['run_dir']}"))
    if d.get("eval_loss"):
        sets = ", ".join(
            f"{name} {loss:.4f} (perplexity {math.exp(min(loss, 700)):.2f})"
            for name, loss in d["eval_loss"].items()
        )
        console.print(data(f"eval at step {_fmt(d.get('eval_step'))}: {sets}"))
    columns = ("#", "job", "state", "class", "nodes", "submitted", "started", "ended", "exit",
               "reason")  # fmt: skip
    t = text.table("attempts", columns)
    for a in d["attempt_list"]:
        t.add_row(
            *map(
                data,
                (
                    a["attempt_no"],
                    _fmt(a["job_id"]),
                    a["state"],
                    _fmt(a.get("klass")),
                    _fmt(a["node_list"]),
                    _when(a["submitted_at"]),
                    _when(a["started_at"]),
                    _when(a["ended_at"]),
                    _fmt(a["exit_code"]),
                    _fmt(a["reason"]),
                ),
            )
        )
    text.show(console, t)
    ckpts = d["checkpoints"]
    if ckpts:
        parts = [
            f"{c['step']}{'' if c['complete'] else ' (torn)'}"
            f"{' (permanent)' if c.get('permanent') else ''}"
            for c in ckpts
        ]
        console.print(data("checkpoints: " + ", ".join(parts)))
    g = d.get("goodput") or {}
    if g.get("goodput") is not None:
        console.print(
            f"goodput {g['goodput']:.1%} of {g['wall_s']:.0f}s: queued {g['queued_s']:.0f}s, "
            f"recomputed {g['recomputed_s']:.0f}s ({g['recomputed_steps']} steps), "
            f"other {g['other_s']:.0f}s"
        )
    if (d.get("ledger") or {}).get("wall_s"):
        console.print(data(ledger_line(d["ledger"])))
        if (d["ledger"].get("predicted") or {}).get("shares"):  # --json says why not
            console.print(data(predicted_line(d["ledger"]["predicted"])))
    sg = d.get("straggler")
    if sg and sg.get("ratio") is not None:
        secs = f"{_fmt(sg['seconds'], '.3g')}s vs {_fmt(sg['median_s'], '.3g')}s"
        console.print(
            data(
                f"straggler: {sg['node']} (rank {sg['rank']}) {_fmt(sg['ratio'], '.2f')}x "
                f"the median compute per step ({secs}) at step {sg['step']}"
            )
        )
    if d.get("nodes_excluded"):
        console.print(data(f"excluded nodes: {', '.join(map(str, d['nodes_excluded']))}"))
    for b in d.get("burnin") or []:  # what each start's burn-in decided, and why
        out = "; ".join(f"{x.get('node')} left out: {x.get('reason')}" for x in b["excluded"] or [])
        on = ",".join(b["use"] or []) or "-"
        line = f"burn-in (job {b['job_id']}.{b['attempt']}): {b['action']} on {on}"
        console.print(data(line + (f"; {out}" if out else "")))
    losses = [loss for _, loss in d["losses"]]
    if losses:
        console.print(f"loss {losses[0]:.3f} {sparkline(losses)} {losses[-1]:.3f}")


def _dur(s: float) -> str:
    if s >= 2 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"


def ledger_line(led: dict[str, Any]) -> str:
    """The goodput ledger in one line: every category that holds time, with its share."""
    from olmoctl.core.track.ledger import LABELS

    wall = led["wall_s"]
    parts = [
        f"{LABELS.get(k, k)} {_dur(v)} ({v / wall:.0%})" for k, v in led["seconds"].items() if v
    ]
    return f"time since submission ({_dur(wall)}): " + ", ".join(parts)


def predicted_line(p: dict[str, Any]) -> str:
    """What plan predicts for the run, in the ledger's words."""
    from olmoctl.core.track.ledger import LABELS

    shares = ", ".join(f"{LABELS.get(k, k)} {v:.1%}" for k, v in p["shares"].items())
    g = p["simulated_goodput"]
    return (
        f"plan predicted (MFU {p['mfu']:.2f}, {p['mfu_source']}): {shares}; simulated goodput "
        f"{g['mean']:.1%} (p5 {g['p5']:.1%}, p95 {g['p95']:.1%}, {g['seeds']} seeds)"
    )


def sweep_table(sweep: str, rows: list[dict[str, Any]]) -> None:
    """`status --sweep`: one line per point, its parameters as columns, best loss first."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r["params"] if k not in keys]
    columns = ("run", *(str(k) for k in keys), "state", "step", "loss", "best")
    t = text.table(f"sweep {sweep} (best loss first)", columns, names=("run",))
    for r in rows:
        t.add_row(
            data(r["name"]),
            *(data(r["params"].get(k, "-")) for k in keys),
            _state(r["state"]),
            data(f"{_fmt(r['step'])}/{r['total_steps']}"),
            data(_fmt(r["loss"], ".4f")),
            data(_fmt(r["best_loss"], ".4f")),
        )
    text.show(_console(), t)
