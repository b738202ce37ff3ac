"""`olmoctl render`: print the exact batch script that `launch` would submit."""

from __future__ import annotations

from pathlib import Path

import typer

from olmoctl.cli import options
from olmoctl.errors import UsageError


def render(
    recipe: str = typer.Argument(..., help="Recipe name or path to a YAML file."),
    cluster: str = options.CLUSTER,
    nodes: int = options.NODES,
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
) -> None:
    """Print the batch script that `launch` would submit, byte for byte."""
    from olmoctl.core import catalog
    from olmoctl.core.render import render as render_script
    from olmoctl.core.render import train_command

    spec = catalog.resolve(recipe, cluster, nodes=nodes, name=name, time=time, overrides=override)
    try:  # what launch would submit now: its run name and the cluster's node exclusions
        from olmoctl.core.launch import prepare
        from olmoctl.core.store import Store

        spec = prepare(
            Store(), recipe, cluster, nodes=nodes, name=name, time_limit=time, overrides=override
        )
    except UsageError as e:
        # An existing run's name, or no usable state store: render the plain resolution.
        if not any(w in str(e) for w in ("already exists", "already holds", "not writable")):
            raise
    text = render_script(spec, task_command=train_command(spec) if plain else None)
    if out is None:
        typer.echo(text, nl=False)
        return
    from olmoctl.core.fileio import atomic_write

    try:
        atomic_write(out, text, mode=0o755)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write: {e.strerror}") from None
    typer.echo(f"wrote {out}", err=True)


def register(app: typer.Typer) -> None:
    app.command("render")(render)
