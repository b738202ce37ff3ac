"""The `olmoctl` command. Thin: parse, call one core function, print.

Startup is sacred: nothing here imports torch, submitit or fabric; commands that need
them import lazily inside the command.
"""

from __future__ import annotations

import os
import sys

import typer

from olmoctl import __version__
from olmoctl.cli import (
    catalog_cmds,
    logs_cmd,
    plan_cmd,
    remote_cmd,
    render_cmd,
    repro_cmds,
    runs_cmds,
    supervise_cmds,
    sweep_cmd,
)
from olmoctl.errors import OlmoctlError

app = typer.Typer(
    name="olmoctl",
    help="Launch, track and resume OLMo-style pretraining on Slurm clusters (AMD and NVIDIA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help and errors: rich's help renderer (markdown-it, rich.console) costs
    # more than the rest of startup together.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"olmoctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    state_dir: str | None = typer.Option(
        None, "--state-dir", envvar="OLMOCTL_STATE_DIR", help="Where the state store lives."
    ),
) -> None:
    """Launch, track and resume OLMo-style pretraining on Slurm clusters."""
    if state_dir:
        os.environ["OLMOCTL_STATE_DIR"] = state_dir


render_cmd.register(app)
runs_cmds.register(app)
repro_cmds.register(app)
logs_cmd.register(app)
supervise_cmds.register(app)
catalog_cmds.register(app)
plan_cmd.register(app)
sweep_cmd.register(app)
remote_cmd.register(app)  # hidden: `_remote`, the login node's half of an ssh cluster


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="olmoctl", standalone_mode=False)
    except OlmoctlError as e:
        print(f"olmoctl: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("olmoctl: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:
        # Click's own usage errors (typer may vendor click, so match by shape, not by class).
        show = getattr(e, "show", None)
        if callable(show) and isinstance(getattr(e, "exit_code", None), int):
            show()
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        if type(e).__name__ == "Abort":
            sys.exit(1)
        raise
