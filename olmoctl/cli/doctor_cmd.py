"""`olmoctl doctor`: a short preflight job on the cluster (same profile, container and
environment as a real run), one line per check. Exit 0 when every check passed, 1 when one
failed, 2 on bad input."""

from __future__ import annotations

import json

import typer

from olmoctl.cli import exits, options, text
from olmoctl.errors import visible

TIMEOUT_MAX_S = 7 * 86_400


def doctor(
    recipe: str = options.recipe(
        "tiny", help="Recipe whose data files to check (name or path; default: tiny, no files)."
    ),
    cluster: str = options.CLUSTER,
    nodes: int | None = typer.Option(
        None,
        "--nodes",
        "-N",
        help="Nodes (default: 2 where the cluster has them, so the all-reduce crosses nodes).",
        click_type=options.INT,
        callback=options.bounded("--nodes", 1, options.NODES_MAX),
    ),
    time_limit: str | None = typer.Option(
        None, "--time", "-t", help="The job's time limit HH:MM:SS (default: 00:10:00)."
    ),
    override: list[str] = options.OVERRIDE,
    timeout: float = typer.Option(
        1800.0,
        "--timeout",
        help="Seconds to wait for the job, queueing included; then it is cancelled (exit 1).",
        click_type=options.FLOAT,
        callback=options.bounded("--timeout", 0, TIMEOUT_MAX_S, above=True),
    ),
    as_json: bool = options.JSON,
) -> None:
    """Check a cluster before a real run: the network plugin loads, the profile's NCCL/FI
    variables reach the job, GPUs per node, run dir and data, imports, an all-reduce."""
    from rich.console import Console

    from olmoctl.core.doctor import job as core

    spec = core.prepare(recipe, cluster, nodes=nodes, time_limit=time_limit, overrides=override)
    console = Console(stderr=True, quiet=as_json)
    with console.status(text.data(f"doctor: submitting to {spec.cluster.name}")) as spinner:
        report = core.run(
            spec,
            timeout_s=timeout,
            tick=lambda state: spinner.update(
                text.data(f"doctor: job {state} on {spec.cluster.name}")
            ),
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        text.echo(
            f"doctor: cluster {report.cluster}, job {report.job_id} {report.state}, "
            f"{report.nodes} node(s), {report.world_size} rank(s); run dir {report.run_dir}"
        )
        # What the ranks reported (files in the run dir) is data: shown before it is aligned.
        width = max(len(visible(str(line.name))) for line in report.lines)
        for line in report.lines:
            word = "skip" if line.skipped else ("PASS" if line.ok else "FAIL")
            tail = f"  ({line.detail})" if line.detail else ""
            name = visible(str(line.name))
            text.echo(f"{word}  {name:<{width}}  {line.value}{tail}".rstrip())
        failed = report.failed
        verdict = "all checks passed" if not failed else f"failed: {', '.join(failed)}"
        text.echo(f"doctor: {verdict}")
    if not report.ok:
        raise typer.Exit(exits.FAILED)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
