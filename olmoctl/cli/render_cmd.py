"""`olmoctl render`: print the exact batch script that `launch` would submit."""

from __future__ import annotations

from pathlib import Path

import typer
from click.core import ParameterSource

from olmoctl.cli import complete, options
from olmoctl.cli.text import echo, lines
from olmoctl.errors import UsageError


def render(
    ctx: typer.Context,
    recipe: str | None = options.recipe(),
    cluster: str | None = options.cluster(),
    nodes: int = options.NODES,
    spare_nodes: int | None = options.SPARE_NODES,
    name: str | None = options.NAME,
    time: str | None = options.TIME,
    override: list[str] = options.OVERRIDE,
    out: Path | None = typer.Option(None, "--out", help="Write the script to FILE."),
    plain: bool = typer.Option(
        False,
        "--plain",
        help="Run `python -m olmoctl.train` in the slot instead of submitit's "
        "job command (for sbatch by hand).",
    ),
    diff: str | None = typer.Option(
        None,
        "--diff",
        metavar="RUN",
        autocompletion=complete.runs,
        help="Diff RUN's attempt script against a render now.",
    ),
    attempt: int | None = options.attempt("With --diff: attempt K."),
    diff_cluster: tuple[str, str] | None = typer.Option(
        None, "--diff-cluster", metavar="A B", help="Diff RECIPE's scripts on clusters A and B."
    ),
    force: bool = options.FORCE,
    from_spec: Path | None = typer.Option(
        None,
        "--from-spec",
        metavar="SPEC",
        help="Render from a run's spec.json (or its run directory) as launch wrote it: "
        "the script that submission used (the hint in every script's header).",
    ),
) -> None:
    """Print the batch script that `launch` would submit, byte for byte."""
    if from_spec is not None:
        given = _ignored(ctx, uses={"from_spec", "out", "plain"})
        if given:
            raise UsageError(
                f"--from-spec takes everything from the spec; it goes without {', '.join(given)} "
                "(to change the run: olmoctl launch --from RUN -o KEY=VALUE)"
            )
        from olmoctl.core.launch.render import render as render_script
        from olmoctl.core.launch.render import train_command
        from olmoctl.core.launch.specs import load_spec_file

        _check_out(out)
        spec = load_spec_file(from_spec)
        _emit(render_script(spec, task_command=train_command(spec) if plain else None), out)
        return
    if diff is not None or diff_cluster is not None or attempt is not None:
        if diff is None and diff_cluster is None:
            raise UsageError("--attempt goes with --diff RUN")
        _check_diff_options(ctx, diff is not None)
        return _render_diff(
            run=diff,
            attempt=attempt,
            clusters=diff_cluster,
            recipe=recipe,
            nodes=nodes,
            name=name,
            time=time,
            overrides=override,
        )
    if recipe is None or cluster is None:
        raise UsageError("give a recipe and --cluster CLUSTER (or --diff RUN, or --from-spec)")
    from olmoctl.core.launch import checks as launch_checks
    from olmoctl.core.launch.render import render as render_script
    from olmoctl.core.launch.render import train_command
    from olmoctl.core.launch.specs import resolve
    from olmoctl.core.launch.submit import prepare
    from olmoctl.store import Store, StoreBusy, StoreError

    _check_out(out)
    try:  # what launch would submit now: its run name and the cluster's node exclusions
        # (read only: a store that does not exist is not created)
        spec = prepare(
            Store(), recipe, cluster, nodes=nodes, name=name, time_limit=time,
            overrides=override, existing_ok=True, force=force, spare_nodes=spare_nodes,
        )  # fmt: skip
    except (StoreError, StoreBusy) as e:  # render needs no store: say so, go on without
        echo(f"note: {e}; rendered without its node exclusions and run names", err=True)
        spec = resolve(
            recipe, cluster, nodes=nodes, name=name, time=time, overrides=override,
            spare_nodes=spare_nodes,
        )  # fmt: skip
        launch_checks.check(spec, force=force)
    for problem in launch_checks.problems(spec) if force else ():
        echo(f"warning: launch would refuse this without --force: {problem}", err=True)
    _emit(render_script(spec, task_command=train_command(spec) if plain else None), out)


# What each diff reads of the command line; any other option given would be ignored.
_DIFF_RUN_USES = {"diff", "attempt", "time", "override"}
_DIFF_CLUSTERS_USES = {"diff_cluster", "recipe", "nodes", "name", "time", "override"}


def _check_diff_options(ctx: typer.Context, run: bool) -> None:
    if run and (given := _ignored(ctx, _DIFF_RUN_USES)):
        raise UsageError(
            f"--diff RUN renders RUN's recorded config; it goes without {', '.join(given)} "
            "(-o KEY=VALUE and --time change what is rendered)"
        )
    if not run and (given := _ignored(ctx, _DIFF_CLUSTERS_USES)):
        raise UsageError(
            f"--diff-cluster A B renders RECIPE for A and for B; it goes without "
            f"{', '.join(given)} (it takes a recipe, --nodes, --name, --time and -o)"
        )


def _ignored(ctx: typer.Context, uses: set[str]) -> list[str]:
    """The options (and arguments) given on the command line that are not in `uses`, as a
    user would write them: a default is no choice; an explicit `--nodes 1` is."""
    out = []
    for p in ctx.command.params:
        source = ctx.get_parameter_source(p.name) if p.name else None
        if p.name in uses or source in (None, ParameterSource.DEFAULT):
            continue
        long = [o for o in p.opts if o.startswith("--")]
        out.append("a recipe" if p.name == "recipe" else "-o" if p.name == "override" else long[0])
    return out


def _check_out(out: Path | None) -> None:
    if out is not None:  # refuse a device, FIFO, link... before any work
        from olmoctl.fileio import check_target

        check_target(out, "--out")


def _emit(text: str, out: Path | None) -> None:
    """The script on stdout, or written to `out` (_check_out'ed before any work)."""
    if out is None:
        typer.echo(text, nl=False)
        return
    from olmoctl.fileio import atomic_write

    try:
        atomic_write(out, text, mode=0o755, label="--out")
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write: {e.strerror}") from None
    echo(f"wrote {out}", err=True)


def _render_diff(
    *,
    run: str | None,
    attempt: int | None,
    clusters: tuple[str, str] | None,
    recipe: str | None,
    nodes: int,
    name: str | None,
    time: str | None,
    overrides: list[str],
) -> None:
    """Print a unified diff (stdout) and the config keys that differ (stderr)."""
    from olmoctl.core.launch import repro
    from olmoctl.store import Store

    if run is not None:
        d = repro.diff_run(Store(), run, attempt=attempt, overrides=overrides, time=time)
    else:
        assert clusters is not None
        if recipe is None:
            raise UsageError(
                "--diff-cluster A B needs a recipe: olmoctl render RECIPE --diff-cluster A B"
            )
        if attempt is not None:
            raise UsageError("--attempt goes with --diff RUN")
        a, b = clusters
        d = repro.diff_clusters(
            recipe, a, b, nodes=nodes, name=name, time=time, overrides=overrides
        )
    typer.echo(lines(d.diff), nl=False)  # a recorded script is data
    if not d.diff:
        echo(f"no difference between {d.old_name} and {d.new_name}", err=True)
    if d.config_changes:
        echo(f"config differs in {len(d.config_changes)} key(s):", err=True)
        for c in d.config_changes:
            echo(f"  {c}", err=True)


def register(app: typer.Typer) -> None:
    app.command("render")(render)
