"""`olmoctl _remote`: hidden; the local olmoctl starts `_remote serve` on a login node over
its one SSH connection. The server itself is olmoctl/backends/ssh_serve.py; this only wires
the commands.

`_remote call` answers one request read from stdin (unframed), for scripts and debugging:
  echo '{"olmoctl": "0.1.0", "id": 1, "ops": [{"op": "glob", "folder": "/x", "pattern": "*"}]}' \
    | olmoctl _remote call
"""

from __future__ import annotations

import json
import sys

import typer

app = typer.Typer(
    help="Internal: the remote side of an ssh cluster (JSON on stdin/stdout).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("serve")
def serve() -> None:
    """Answer requests, one JSON line each, until stdin ends."""
    from olmoctl.backends import ssh_serve

    ssh_serve.serve(sys.stdin.buffer)


@app.command("call")
def call() -> None:
    """Answer one request read from stdin (plain JSON out)."""
    from olmoctl.backends import ssh_serve

    answer, code = ssh_serve.call(sys.stdin.read())
    typer.echo(json.dumps(answer))
    if code:
        raise typer.Exit(code)


@app.command("ops")
def ops() -> None:
    """List the ops a request may name, with their arguments."""
    from olmoctl.backends import ssh_serve

    for line in ssh_serve.listing():
        typer.echo(line)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="_remote", hidden=True)
