"""`olmoctl launch`, `status`, `cancel`: thin wrappers around core.launch and core.status.

Imported only when one of them runs (cli/commands.py), and `status` on a store without runs
is timed (benchmarks/startup.py): json, launch_notes and cli/text.py are imported by the code
that uses them.
"""

from __future__ import annotations

import time
from typing import Any

import typer

from olmoctl.cli import complete, options
from olmoctl.errors import UsageError, shown, shown_plain


def echo(line: str, *, err: bool = False) -> None:
    """cli/text.py's echo (a line that holds data), loaded when such a line is printed."""
    from olmoctl.cli import text

    text.echo(line, err=err)


def launch(
    recipe: str | None = options.recipe(),
    cluster: str | None = options.cluster(),
    nodes: int = options.NODES,
    spare_nodes: int | None = options.SPARE_NODES,
    name: str | None = options.NAME,
    time_limit: str | None = options.TIME,
    override: list[str] = options.OVERRIDE,
    dry_run: bool = typer.Option(False, "--dry-run", help="Render and validate; submit nothing."),
    wait: bool = typer.Option(False, "--wait", help="Wait until the job ends, showing progress."),
    as_json: bool = options.JSON,
    source: str | None = typer.Option(
        None,
        "--from",
        metavar="RUN",
        autocompletion=complete.runs,
        help="Re-run RUN exactly as recorded (-o on top); warns about code/package/data changes.",
    ),
    force: bool = options.FORCE,
) -> None:
    """Submit a run: prints the run name and the Slurm job id."""
    if source is not None:
        if recipe is not None or cluster is not None or nodes != 1 or spare_nodes is not None:
            raise UsageError(
                f"--from {source} takes recipe, cluster and nodes (spares too) from the record; "
                "change the config with -o KEY=VALUE"
            )
        return _launch_from(
            source,
            name=name,
            time_limit=time_limit,
            overrides=override,
            dry_run=dry_run,
            wait=wait,
            as_json=as_json,
            force=force,
        )
    if recipe is None or cluster is None:
        raise UsageError("give a recipe and --cluster (or --from RUN)")
    from olmoctl.cli import launch_notes
    from olmoctl.core.launch import submit as core
    from olmoctl.core.launch.render import render
    from olmoctl.store import Store

    store = Store()
    store.connect()  # a damaged store fails here, before anything else (creates nothing)
    store.check_writable()  # and so does a state dir where the run could not be recorded
    spec = core.prepare(
        store, recipe, cluster, nodes=nodes, name=name, time_limit=time_limit,
        overrides=override, force=force, spare_nodes=spare_nodes,
    )  # fmt: skip
    launch_notes.warn_forced(spec, force)
    if dry_run:
        typer.echo(render(spec), nl=False)
        launch_notes.warn_space([spec], remote_ok=False)
        echo(f"dry run: {spec.name} validated, nothing submitted", err=True)
        return
    done = core.submit_attempt(store, spec, new_run=True, on_warning=launch_notes.warning)
    if as_json:
        import json

        typer.echo(json.dumps({"run": spec.name, "job_id": done.job_id, "run_dir": spec.run_dir}))
    else:
        echo(f"{spec.name}  job {done.job_id}  ({spec.run_dir})")
    if wait:
        _wait(store, spec.name, as_json)


# A table of 1,000 runs helps no one (and costs seconds to draw): show the ones that matter.
TABLE_ROWS = 50


def _launch_from(
    source: str,
    *,
    name: str | None,
    time_limit: str | None,
    overrides: list[str],
    dry_run: bool,
    wait: bool,
    as_json: bool,
    force: bool = False,
) -> None:
    """`olmoctl launch --from SOURCE`: its recorded config, overrides on top; warn about every
    difference in code, packages or data since SOURCE ran."""
    from olmoctl.cli import launch_notes
    from olmoctl.core.launch import repro
    from olmoctl.core.launch.render import render
    from olmoctl.store import Store

    store = Store()
    store.connect()
    store.check_writable()
    plan = repro.plan_from(
        store, source, name=name, overrides=overrides, time=time_limit, force=force
    )
    launch_notes.warn_forced(plan.spec, force)
    for d in plan.differences:
        echo(f"warning: differs from {source}: {d}", err=True)
    for n in plan.notes:
        echo(f"note: {n}", err=True)
    if dry_run:
        typer.echo(render(plan.spec), nl=False)
        launch_notes.warn_space([plan.spec], remote_ok=False)
        echo(f"dry run: {plan.spec.name} validated, nothing submitted", err=True)
        return
    done = repro.launch_from(store, plan, on_warning=launch_notes.warning)
    spec = plan.spec
    if as_json:
        import json

        typer.echo(
            json.dumps(
                {
                    "run": spec.name,
                    "job_id": done.job_id,
                    "run_dir": spec.run_dir,
                    "from": source,
                    "differences": plan.differences,
                }
            )
        )
    else:
        echo(f"{spec.name}  job {done.job_id}  ({spec.run_dir})  from {source}")
    if wait:
        _wait(store, spec.name, as_json)


def _wait(store: Any, name: str, as_json: bool) -> None:
    """`--wait`: until the run ends; anything but COMPLETED exits non-zero (cli/exits.py)."""
    from olmoctl.cli import exits
    from olmoctl.cli.progress import wait_for_run

    last = wait_for_run(store, name, quiet=as_json)
    code = exits.of_run_end(last)
    if code != exits.OK:
        if not as_json:
            outcome = (last.klass or last.state) if last else "no attempt"
            reason = f": {last.reason}" if last and last.reason else ""
            hint = f"; continue it: olmoctl resume {name}" if code == exits.STOPPED else ""
            echo(f"{name}: ended {outcome}{reason} (exit status {code}){hint}", err=True)
        raise typer.Exit(code)


def _check_since(text: str | None) -> str | None:
    if text is not None:
        _duration(text)
    return text


def status(
    run: str | None = typer.Argument(
        None, autocompletion=complete.runs, help="A run name: show it in detail."
    ),
    state: str | None = typer.Option(None, "--state", help="Only runs in this state."),
    cluster: str | None = typer.Option(
        None, "--cluster", "-c", autocompletion=complete.clusters, help="Only this cluster's runs."
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Only runs created since: 2h, 3d, 30m.",
        callback=_check_since,  # refused before anything else runs
    ),
    sweep: str | None = typer.Option(None, "--sweep", help="A sweep's points, best loss first."),
    show_all: bool = typer.Option(
        False, "--all", help=f"Every run in the table (default: {TABLE_ROWS}, unfinished first)."
    ),
    as_json: bool = options.JSON,
) -> None:
    """Every run at a glance (one sacct call for all), or one run in detail."""
    from olmoctl import paths
    from olmoctl.store.peek import has_runs

    # Every argument is checked before anything is queried or printed.
    since_ts = time.time() - _duration(since) if since else None
    if run is None and sweep is None and not has_runs(paths.state_dir() / paths.DB_NAME):
        # Nothing to show: create nothing, load neither the store's rows nor the table code.
        typer.echo("[]" if as_json else options.NO_RUNS)
        return
    import json

    from olmoctl.store import Store

    store = Store()
    from olmoctl.cli import status_view
    from olmoctl.core.track import status as core

    if run is not None:
        from olmoctl.core.track.runs import find_run  # catalog, render: not for the table

        find_run(store, run)
    info = core.refresh(store, run_names=[run] if run else None)
    for note in info.notes:
        echo(f"note: {note}", err=True)
    if run is not None:
        d = core.detail(store, run)
        if d.get("ledger"):  # beside it, what plan predicts for this run
            from olmoctl.core.plan.predict import for_run

            d["ledger"]["predicted"] = for_run(find_run(store, run))
        typer.echo(json.dumps(d, indent=2)) if as_json else status_view.detail(d)
        return
    if sweep is not None and not (state or cluster or since):
        from olmoctl.cli import sweep_cmd

        sweep_cmd.show_status(store, sweep, as_json)
        return
    filters = {
        "state": state.upper() if state else None,
        "cluster": cluster,
        "sweep": sweep,
        "since": since_ts,
    }
    rows = core.overview(store, **filters)
    for r in rows:  # one damaged row is one bad line, not a broken table
        if r.get("damaged") and not any(
            n.startswith(f"run {shown(r['name'])}:") for n in info.notes
        ):
            echo(
                f"note: run {shown(r['name'])}: its row in the state store is damaged "
                f"({r['damaged']}); shown with what could be read",
                err=True,
            )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows and any(v is not None for v in filters.values()):
        given = {"--state": state, "--cluster": cluster, "--sweep": sweep, "--since": since}
        said = " ".join(f"{k} {shown_plain(v, 60)}" for k, v in given.items() if v is not None)
        n = len(store.runs())
        echo(f"no runs match {said} ({n} run{'' if n == 1 else 's'} in all)")
        return
    status_view.table(rows if show_all else status_view.most_relevant(rows, TABLE_ROWS))
    if not show_all and len(rows) > TABLE_ROWS:
        echo(
            f"... and {len(rows) - TABLE_ROWS} more runs: --all, or filter with "
            "--state / --cluster / --since / --sweep",
            err=True,
        )


def cancel(
    run: str | None = typer.Argument(None, autocompletion=complete.runs, help="The run to cancel."),
    sweep: str | None = typer.Option(None, "--sweep", help="Cancel every point of a sweep."),
    as_json: bool = options.JSON,
) -> None:
    """Cancel the run's live attempt (scancel) and record it as cancelled by the user."""
    from olmoctl.core.track import control

    if (run is None) == (sweep is None):
        raise UsageError("cancel takes a run name or --sweep SWEEP (one of them)")
    if sweep is not None:
        from olmoctl.cli import sweep_cmd

        sweep_cmd.cancel_sweep(sweep, as_json)
        return
    job_id = control.cancel(run)
    if as_json:
        import json

        typer.echo(json.dumps({"run": run, "cancelled_job": job_id}))
    else:
        echo(f"{run}: cancelled job {job_id}")


SINCE_MAX_S = 100 * 365 * 86400.0  # runs created in the last century: every run


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    try:
        if not text.isascii():  # float() takes other scripts' digits too
            raise ValueError
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise UsageError(
            f"--since {shown(text)}: use a number and a unit, e.g. 30m, 2h, 3d"
        ) from None
    # float() takes nan, inf and 1e400 (inf): none is a duration, nor is a negative one.
    if not 0 < seconds <= SINCE_MAX_S:
        raise UsageError(
            f"--since {shown(text)}: give a duration above 0 and at most 100 years, "
            "e.g. 30m, 2h, 3d"
        )
    return seconds


def register(app: typer.Typer) -> None:
    app.command("launch")(launch)
    app.command("status")(status)
    app.command("cancel")(cancel)
