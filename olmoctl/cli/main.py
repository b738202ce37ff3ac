"""The `olmoctl` command. Thin: parse, call one core function, print.

Startup is sacred: nothing here imports torch, submitit or fabric; commands that need
them import lazily inside the command. No command module is imported here either: the
group (cli/commands.py) imports the one that runs.
"""

from __future__ import annotations

import os
import sys

import typer

from olmoctl import __version__
from olmoctl.cli import exits
from olmoctl.cli.commands import LazyGroup
from olmoctl.errors import OlmoctlError, flat, null_refusal, os_refusal

app = typer.Typer(
    name="olmoctl",
    # The commands are the table in cli/commands.py: each module is imported, and its command
    # built, only when that command runs; --help lists the table.
    cls=LazyGroup,
    help="Launch, track and resume OLMo-style pretraining on Slurm clusters (AMD and NVIDIA).",
    no_args_is_help=True,
    # typer's --install-completion / --show-completion; candidates come from cli/complete.py.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain click help and errors: rich's help renderer (markdown-it, rich.console) costs
    # more than the rest of startup together.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=exits.EPILOG,
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


def main(argv: list[str] | None = None) -> None:
    """Run one command and exit with its status (the table in cli/exits.py)."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """The command's exit status. With standalone_mode=False, typer turns a `typer.Exit(N)`
    (and Ctrl-C, as 130) into a returned N instead of exiting: that value is the status."""
    _plain_terminal()
    try:
        rv = app(args=argv, prog_name="olmoctl", standalone_mode=False)
    except OlmoctlError as e:
        return _error(e)
    except OSError as e:
        # A path the OS refused (too long, a loop, /proc, /sys...) wherever it was met.
        return _error(os_refusal(e))
    except ValueError as e:
        refused = null_refusal(e)  # a path with a NUL in it, which Python refuses first
        return _error(refused) if refused is not None else _click_error(e)
    except KeyboardInterrupt:
        rv = exits.INTERRUPTED
    except typer.Exit as e:
        rv = e.exit_code
    except Exception as e:
        return _click_error(e)
    # Commands return None; an int is an exit status (typer's returned typer.Exit code).
    code = rv if isinstance(rv, int) and not isinstance(rv, bool) else exits.OK
    if code == exits.INTERRUPTED:
        print("olmoctl: interrupted", file=sys.stderr)
    return code


def _error(e: OlmoctlError) -> int:
    print(f"olmoctl: error: {flat(str(e))}", file=sys.stderr)  # one line, always
    return e.exit_code


def _plain_terminal() -> None:
    """On a terminal that cannot show every character (PYTHONIOENCODING=ascii, LANG=C), a
    character it lacks is written as its escape (\\u2581) instead of failing the command
    half-way through its output."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding != "utf8" and callable(getattr(stream, "reconfigure", None)):
            stream.reconfigure(errors="backslashreplace")


def _suggested_once(msg: str) -> str:
    """Click (8.2+) and typer each add "Did you mean 'x'?" to an unknown command: once."""
    head, *hints = msg.split(" Did you mean ")
    return " Did you mean ".join([head, *dict.fromkeys(hints)])


def _click_error(e: Exception) -> int:
    """Click's own errors (typer vendors click, so matched by shape, not by class): a usage
    error as one line naming the command (bare `olmoctl` still prints its help)."""
    code = getattr(e, "exit_code", None)
    if type(e).__name__ == "NoArgsIsHelpError" and callable(getattr(e, "show", None)):
        e.show()  # type: ignore[attr-defined]
        return code if isinstance(code, int) else exits.BAD_INPUT
    fmt = getattr(e, "format_message", None)
    if callable(fmt) and isinstance(code, int):
        ctx = getattr(e, "ctx", None)
        path = getattr(ctx, "command_path", "olmoctl") or "olmoctl"
        msg = _suggested_once(" ".join(str(fmt()).split()))  # click may wrap its lines
        print(f"olmoctl: error: {msg} (see '{path} -h')", file=sys.stderr)
        return code
    if type(e).__name__ == "Abort":
        return exits.FAILED
    if os.environ.get("_OLMOCTL_COMPLETE"):
        # typer's completion reads COMP_CWORD and friends unchecked: odd values are the
        # shell's input, not a bug of ours.
        print(f"olmoctl: error: shell completion: {flat(repr(e))}", file=sys.stderr)
        return exits.BAD_INPUT
    raise e
