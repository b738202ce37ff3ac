"""What `olmoctl status --sweep` and `olmoctl sweep --dry-run` show."""

from __future__ import annotations

from typing import Any

from olmoctl.core.launch.render import render
from olmoctl.core.sweep.arrays import chunks, render_array, sweep_dir
from olmoctl.core.sweep.points import Plan
from olmoctl.core.sweep.rows import get
from olmoctl.fileread import Refused
from olmoctl.store import Store


def table(store: Store, sweep: str) -> list[dict[str, Any]]:
    """One row per point: parameters, state, step, last and best loss; best loss first."""
    row = get(store, sweep)
    runs = {r.name: r for r in store.runs(sweep=sweep)}
    out = []
    for p in row.points:
        run = runs.get(p["name"])
        if run is None:  # deleted by hand
            continue
        summary = run.summary
        # status keeps a running best loss; read the events only for points it never saw.
        losses = (
            [summary["best_loss"]] if summary.get("best_loss") is not None else _losses(run.run_dir)
        )
        last = store.last_attempt(p["name"])
        out.append(
            {
                "index": p["index"],
                "name": p["name"],
                "params": p["params"],
                "state": run.state,
                "job_id": last.job_id if last else None,
                "step": summary.get("step"),
                "total_steps": run.total_steps,
                "loss": summary.get("loss"),
                "best_loss": min(losses) if losses else None,
            }
        )
    out.sort(key=lambda r: (r["best_loss"] is None, r["best_loss"] or 0.0, r["index"]))
    return out


def _losses(run_dir: str) -> list[float]:
    from olmoctl.core.track import events as ev

    try:
        return [loss for _, loss in ev.summarize(ev.read_events(run_dir, None)).losses]
    except Refused:  # not a regular file: status, which runs first, has said so
        return []


def dry_run(p: Plan) -> list[dict[str, Any]]:
    """One script per distinct shape (the first point's); array mode adds the array."""
    out = []
    for key, idx in p.shapes().items():
        x = p.points[idx[0]]
        out.append({"shape": list(key), "points": idx, "script": render(x.spec)})
    if p.mode == "array":
        spec0 = p.points[0].spec
        size = spec0.cluster.max_array_size
        for k, chunk in enumerate(chunks(p.points, size)):
            # Each array waits for the one before; its id is Slurm's, at submission. The
            # stand-in is one word, as render_array takes only what needs no quoting.
            after = f"JOBID_OF_ARRAY_{k - 1}" if k else None
            text = render_array(
                p.name,
                chunk,
                [1] * len(chunk),
                max_parallel=p.max_parallel,
                out_dir=str(sweep_dir(spec0, p.name)),
                after=after,
            )
            out.append({"array": k, "points": [x.index for x in chunk], "script": text})
    return out
