"""`olmoctl sweep` (and the sweep views that `status --sweep` / `cancel --sweep` print)."""

from __future__ import annotations

import json
from typing import Any

import typer

from olmoctl.cli import options
from olmoctl.cli.text import echo
from olmoctl.errors import UsageError


def sweep(
    recipe: str | None = options.recipe(help="Recipe name or path (or from --file)."),
    cluster: str | None = options.cluster(help="Cluster profile name or path (or from --file)."),
    grid: list[str] = typer.Option(
        [], "--grid", metavar="KEY=V1,V2", help="Grid values of one key. Repeatable: cartesian."
    ),
    random_count: int | None = typer.Option(
        None,
        "--random",
        metavar="N",
        help="Draw N random points from the --sample keys.",
        click_type=options.INT,
        callback=options.bounded("--random", 1, options.MAX_POINTS),
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        help="Seed of --random (default 0).",
        click_type=options.INT,
        callback=options.bounded("--seed", 0, options.INT64_MAX),
    ),
    sample: list[str] = typer.Option(
        [],
        "--sample",
        metavar="KEY=DIST",
        help="loguniform:A:B, uniform:A:B, int:A:B or choice:X,Y. Repeatable.",
    ),
    file: str | None = typer.Option(
        None, "--file", "-f", help="A sweep YAML file (flags given here override it)."
    ),
    nodes: int | None = typer.Option(
        None,
        "--nodes",
        "-N",
        help="Nodes per point (default 1).",
        click_type=options.INT,
        callback=options.bounded("--nodes", 1, options.NODES_MAX),
    ),
    max_parallel: int | None = typer.Option(
        None,
        "--max-parallel",
        "-P",
        help="At most this many points at once (default: all).",
        click_type=options.INT,
        callback=options.bounded("--max-parallel", 1, options.MAX_POINTS),
    ),
    name: str | None = typer.Option(None, "--name", help="Sweep name; points are NAME-0..n."),
    time_limit: str | None = options.TIME,
    override: list[str] = options.OVERRIDE,
    array: bool | None = typer.Option(
        None,
        "--array/--no-array",
        help="Single-node points as one Slurm job array (default where it fits).",
    ),
    continue_sweep: str | None = typer.Option(
        None, "--continue", metavar="SWEEP", help="Submit the next waiting points of SWEEP."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List the points and one script per shape; submit nothing."
    ),
    as_json: bool = options.JSON,
    force: bool = options.FORCE,
) -> None:
    """Expand a grid / random search into runs NAME-0..n and submit them (returns at once)."""
    from olmoctl.core import sweep as core
    from olmoctl.store import Store

    store = Store()
    store.connect()
    store.check_writable()
    if continue_sweep is not None:
        given = [recipe, cluster, file, random_count, nodes, max_parallel, name, array]
        if any(v is not None for v in given) or grid or sample or override or dry_run or force:
            raise UsageError("--continue SWEEP takes no other sweep options")
        _print_progress(core.advance(store, continue_sweep), as_json)
        return
    d = core.definition(
        recipe=recipe,
        cluster=cluster,
        file=file,
        nodes=nodes,
        name=name,
        time_limit=time_limit,
        max_parallel=max_parallel,
        array=array,
        overrides=override,
        grid=grid,
        random_count=random_count,
        seed=seed,
        samples=sample,
    )
    plan = core.plan(store, d, force=force)
    from olmoctl.cli.launch_notes import warn_forced, warn_space

    specs = [p.spec for p in plan.points]
    for spec in specs:
        warn_forced(spec, force, f"sweep point {spec.name}: ")
    if dry_run:
        _print_dry_run(plan, core.dry_run(plan), as_json)
        warn_space(specs, remote_ok=False)
        return
    warn_space(specs, remote_ok=True)
    done = core.create(store, plan)
    if as_json:
        typer.echo(json.dumps(done.__dict__, indent=2))
        return
    how = (
        f"job array {', '.join(done.arrays)}"
        if done.mode == "array"
        else f"{sum(p['job_id'] is not None for p in done.points)} submitted as separate jobs"
    )
    limit = f", at most {done.max_parallel} at once" if done.max_parallel < len(done.points) else ""
    echo(f"sweep {done.name}: {len(done.points)} points, {how}{limit}")
    for p in done.points:
        job = f"job {p['job_id']}" if p["job_id"] else "waiting"
        echo(f"  {p['name']}  {job}  {_params(p['params'])}")
    if done.note:
        echo(f"note: {done.note}", err=True)


def _params(params: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _print_progress(progress: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(progress.to_dict()))
        return
    for run, job in progress.submitted:
        echo(f"{run}  job {job}")
    state = "done" if progress.done else "running"
    echo(
        f"sweep {progress.sweep}: {state}: {progress.waiting} waiting, "
        f"{progress.in_flight} in flight, {progress.ended} ended"
    )


def _print_dry_run(plan: Any, scripts: list[dict[str, Any]], as_json: bool) -> None:
    points = [{"index": p.index, "name": p.name, "params": p.params} for p in plan.points]
    if as_json:
        out = {"sweep": plan.name, "mode": plan.mode, "max_parallel": plan.max_parallel}
        typer.echo(json.dumps({**out, "points": points, "scripts": scripts}, indent=2))
        return
    for p in points:
        echo(f"{p['name']}  {_params(p['params'])}")
    for s in scripts:
        which = f"array {s['array']}" if "array" in s else f"shape of points {s['points']}"
        typer.echo(f"\n# ---- {which} ----")
        typer.echo(s["script"], nl=False)
    echo(
        f"dry run: sweep {plan.name}, {len(points)} points validated ({plan.mode}), "
        "nothing submitted",
        err=True,
    )


def show_status(store: Any, sweep: str, as_json: bool) -> None:
    """`olmoctl status --sweep SWEEP`: the points, best loss first."""
    from olmoctl.cli import status_view
    from olmoctl.core import sweep as core

    rows = core.table(store, sweep)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    status_view.sweep_table(sweep, rows)


def cancel_sweep(sweep: str, as_json: bool) -> None:
    """`olmoctl cancel --sweep SWEEP`."""
    from olmoctl.core import sweep as core
    from olmoctl.store import Store

    out = core.cancel(Store(), sweep)
    if as_json:
        typer.echo(json.dumps(out))
    else:
        for c in out["cancelled"]:
            echo(f"{c['run']}: cancelled job {c['job_id']}")
        if out["never_submitted"]:
            echo(f"{len(out['never_submitted'])} waiting points will not be submitted")
        if not out["cancelled"] and not out["never_submitted"]:
            echo(f"sweep {sweep}: nothing left to cancel")
    for e in out["errors"]:
        echo(f"olmoctl: error: {e}", err=True)
    if out["errors"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
