"""The lazy command group (olmoctl/cli/commands.py): its static table stays true to the
command modules, and the CLI reads exactly as it did when main.py imported every module and
called each register(app) at startup (help, errors, completion)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import click
import pytest
import typer
from click.shell_completion import ShellComplete
from typer.testing import CliRunner

from olmoctl.cli import main
from olmoctl.cli.commands import COMMANDS, LazyGroup, build, stand_in
from tests.conftest import REPO

MODULES = list(dict.fromkeys(e.module for e in COMMANDS.values()))  # in the table's order
WIDTHS = (20, 45, 60, 80, 200)  # summaries are cut to the terminal's width


def _eager() -> typer.Typer:
    """The app as main.py used to wire it: the same root, every module's register(app)
    called up front (in the table's order), typer's own group."""
    app = copy.copy(main.app)
    app.info = copy.copy(main.app.info)
    app.info.cls = None
    app.registered_commands, app.registered_groups = [], []
    for name in MODULES:
        module = getattr(__import__("olmoctl.cli", fromlist=[name]), name)
        module.register(app)
    return app


def _group(app: typer.Typer) -> click.Group:
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    return group


def test_every_command_module_is_in_the_table() -> None:
    on_disk = {p.stem for p in (REPO / "olmoctl" / "cli").glob("*.py")}
    modules = {m for m in on_disk if re.fullmatch(r"\w+_cmds?", m)}
    assert modules == set(MODULES)


def test_the_table_lists_what_the_modules_register_in_order() -> None:
    eager = _group(_eager())
    ctx = click.Context(eager, info_name="olmoctl")
    assert list(COMMANDS) == eager.list_commands(ctx)
    for name, entry in COMMANDS.items():
        real = eager.get_command(ctx, name)
        assert real is not None
        assert entry.hidden == real.hidden, name
        assert entry.summary == real.get_short_help_str(limit=10**6), name
        for width in WIDTHS:  # what --help and a TAB show of it, at any terminal width
            assert stand_in(name).get_short_help_str(width) == real.get_short_help_str(width)
        assert type(build(name)) is type(real)


def test_the_root_group_is_lazy() -> None:
    group = _group(main.app)
    assert isinstance(group, LazyGroup)
    assert group.commands == {}  # nothing built before it is asked for
    ctx = click.Context(group, info_name="olmoctl")
    assert group.get_command(ctx, "nosuch") is None
    status = group.get_command(ctx, "status")
    assert status is not None and status.name == "status"
    assert list(group.commands) == ["status"]  # that one only, kept for the invocation


def _invoke(app: typer.Typer, args: list[str], width: int) -> tuple[int, str]:
    res = CliRunner().invoke(app, args, prog_name="olmoctl", terminal_width=width)
    return res.exit_code, res.output


def _help_cases() -> list[list[str]]:
    cases = [["--help"], ["-h"], [], ["_remote"], ["_remote", "call", "--help"]]
    return cases + [[name, "--help"] for name in COMMANDS]


@pytest.mark.parametrize("args", _help_cases(), ids=lambda a: " ".join(a) or "bare")
def test_help_reads_as_before(args: list[str]) -> None:
    eager = _eager()
    for width in (50, 80, 120):
        assert _invoke(main.app, args, width) == _invoke(eager, args, width)


@pytest.mark.parametrize(
    "args",
    [["nosuch"], ["stat"], ["_remot"], ["--bogus"], ["status", "--bogus"], ["status", "a", "b"]],
)
def test_errors_read_as_before(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = []
    for app in (main.app, _eager()):
        monkeypatch.setattr(main, "app", app)
        code = main.run(args)
        outs.append((code, capsys.readouterr()))
    assert outs[0] == outs[1]
    assert outs[0][0] == 2 and len(outs[0][1].err.strip().splitlines()) == 1
    if args == ["stat"]:
        assert "Did you mean 'status'?" in outs[0][1].err


@pytest.mark.parametrize(
    ("args", "incomplete"),
    [([], ""), ([], "s"), ([], "_"), ([], "-"), ([], "--"), (["status"], "--"),
     (["_remote"], ""), (["--state-dir", "x"], "c"), (["nosuch"], "")],
)  # fmt: skip
def test_completion_reads_as_before(args: list[str], incomplete: str, tmp_path: Path) -> None:
    def items(app: typer.Typer) -> list[tuple[str, str, str | None]]:
        done = ShellComplete(_group(app), {}, "olmoctl", "_OLMOCTL_COMPLETE")
        return [(i.type, i.value, i.help) for i in done.get_completions(args, incomplete)]

    assert items(main.app) == items(_eager())
