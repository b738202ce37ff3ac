"""`olmoctl resume`, `watch` and `nodes`: acting on failures."""

from __future__ import annotations

import dataclasses
import json
import time

import typer

from olmoctl.cli import complete, options


def resume(
    run: str = typer.Argument(..., autocompletion=complete.runs, help="The run to resume."),
    nodes: int | None = typer.Option(
        None,
        "--nodes",
        "-N",
        help="New node count.",
        callback=options.bounded("--nodes", 1, options.NODES_MAX),
    ),
    override: list[str] = options.OVERRIDE,
    as_json: bool = options.JSON,
) -> None:
    """New attempt of RUN from its newest complete checkpoint, bad nodes excluded."""
    from olmoctl.core import supervise
    from olmoctl.store import Store

    res = supervise.resume(Store(), run, nodes=nodes, overrides=override)
    out = {
        "run": res.run,
        "action": res.action,
        "job_id": res.job_id,
        "excluded_nodes": res.excluded,
        "torn_checkpoints_skipped": res.torn,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    excl = f", excluding {','.join(res.excluded)}" if res.excluded else ""
    torn = f"; skipped torn checkpoint(s) {res.torn}" if res.torn else ""
    if res.action == "steered":
        typer.echo(f"{run}: Slurm requeued job {res.job_id}; kept it off {','.join(res.excluded)}")
    else:
        typer.echo(f"{run}  job {res.job_id}{excl}{torn}")


def watch(
    runs: list[str] = typer.Argument(
        None, autocompletion=complete.runs, help="Runs to watch (default: all)."
    ),
    interval: float = typer.Option(
        30.0,
        "--interval",
        help="Seconds between polls.",
        callback=options.bounded("--interval", 0, options.DAY_S, above=True),
    ),
    max_retries: int = typer.Option(
        5,
        "--max-retries",
        help="Infrastructure retries per run.",
        callback=options.bounded("--max-retries", 0, 1000),
    ),
    backoff: float = typer.Option(
        30.0,
        "--backoff",
        help="First retry delay (doubles).",
        callback=options.bounded("--backoff", 0, options.DAY_S),
    ),
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    until_done: bool = typer.Option(
        False, "--until-done", help="Exit when every watched run is finished or needs a human."
    ),
) -> None:
    """Supervise runs: resume infrastructure failures, cancel hangs, report code errors."""
    from rich.console import Console

    from olmoctl.core import supervise
    from olmoctl.core.launch import find_run
    from olmoctl.store import Store

    store = Store()
    for name in runs or []:  # validate before the banner: an error is the only output
        find_run(store, name)
    owner = supervise.owner_id()
    policy = supervise.WatchPolicy(
        max_retries=max_retries, backoff_s=backoff, lease_s=max(60.0, 3 * interval)
    )
    console = Console(stderr=True)
    console.print(f"watch: {owner}, every {interval:g}s, log {store.dir / 'watch.log'}")
    try:
        while True:
            for line in supervise.tick(store, owner, policy, runs or None):
                console.print(f"{time.strftime('%H:%M:%S')} {line}")
            if once or (until_done and supervise.all_settled(store, runs or None, max_retries)):
                return
            time.sleep(interval)
    finally:
        supervise.release_leases(store, owner)


def nodes(
    cluster: str | None = typer.Option(
        None, "--cluster", "-c", autocompletion=complete.clusters, help="Only this cluster."
    ),
    clear: str | None = typer.Option(None, "--clear", help="Forget NODE's failures."),
    as_json: bool = options.JSON,
) -> None:
    """Node health: failures per node and why (the last reason; for a burn-in, the check and
    measured vs expected); at the profile's node_failure_threshold a node is excluded."""
    from olmoctl.core import health
    from olmoctl.store import Store

    store = Store()
    if clear is not None:
        n = health.clear(store, clear, cluster)
        typer.echo(f"cleared {clear} ({n} record{'s' if n != 1 else ''})")
        return
    rows = store.nodes(cluster)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="node health")
    cols = ("cluster", "node", "failures", "check", "measured / expected", "last reason", "when")
    for col in cols:
        t.add_column(col)
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.last_at)) if r.last_at else "-"
        vs = "-"
        if r.measured is not None or r.expected is not None:
            got = "-" if r.measured is None else f"{r.measured:.3g}"
            want = "-" if r.expected is None else f">= {r.expected:.3g}"
            vs = f"{got} / {want} {r.unit or ''}".strip()
        t.add_row(
            r.cluster, r.node, str(r.failures), r.last_check or "-", vs, r.last_reason or "-", when
        )
    Console().print(t if rows else "no node failures recorded")


def register(app: typer.Typer) -> None:
    app.command("resume")(resume)
    app.command("watch")(watch)
    app.command("nodes")(nodes)
