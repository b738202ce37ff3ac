"""Options shared by several commands, so every command spells them the same way."""

from __future__ import annotations

import typer

OVERRIDE = typer.Option(
    [],
    "-o",
    "--override",
    metavar="KEY=VALUE",
    help="Override a recipe key (optim.lr=3e-4) or a cluster key (cluster.account=X). Repeatable.",
)
CLUSTER = typer.Option(..., "--cluster", "-c", help="Cluster profile name or path to a YAML file.")
NODES = typer.Option(1, "--nodes", "-N", help="Number of nodes.")
NAME = typer.Option(None, "--name", help="Run name (default: RECIPE-CLUSTER).")
TIME = typer.Option(None, "--time", "-t", help="Time limit HH:MM:SS (default: the profile's).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")

# What `status` says on a store without runs (runs_cmds says it without loading the table code).
NO_RUNS = "no runs yet: olmoctl launch RECIPE --cluster CLUSTER"
