"""The command table and the group that reads it: `olmoctl CMD` imports CMD's module (and
builds its click parameters) on first use, and `olmoctl --help` or a TAB on the command name
lists the table without importing any command module.

Each `olmoctl/cli/*_cmd(s).py` module keeps its `register(app)`; the group calls it on a
private typer app and builds the one command asked for. tests/unit/test_commands.py keeps the
table true to the modules (names, order, hidden, summaries).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import click
import typer
from typer.core import TyperGroup


class Entry(NamedTuple):
    module: str  # under olmoctl.cli, holding register(app)
    summary: str  # the first sentence of the command's help: what `--help` lists
    hidden: bool = False


# In the order `--help` lists them (the order the modules used to register them in).
COMMANDS: dict[str, Entry] = {
    "render": Entry(
        "render_cmd", "Print the batch script that `launch` would submit, byte for byte."
    ),
    "launch": Entry("runs_cmds", "Submit a run: prints the run name and the Slurm job id."),
    "status": Entry(
        "runs_cmds", "Every run at a glance (one sacct call for all), or one run in detail."
    ),
    "cancel": Entry(
        "runs_cmds",
        "Cancel the run's live attempt (scancel) and record it as cancelled by the user.",
    ),
    "show": Entry(
        "repro_cmds",
        "What a run recorded to be re-run exactly: config, scripts, code, environment, data.",
    ),
    "card": Entry(
        "repro_cmds",
        "Write a run card: Markdown + JSON with the record, attempts, goodput, loss curve PNG.",
    ),
    "logs": Entry("logs_cmd", "Print the job's output, per rank, with a header for each rank."),
    "resume": Entry(
        "supervise_cmds",
        "New attempt of RUN from its newest complete checkpoint, bad nodes excluded.",
    ),
    "watch": Entry(
        "supervise_cmds",
        "Supervise runs: resume infrastructure failures, cancel hangs, report code errors and "
        "stragglers; notify a webhook or e-mail of what happens.",
    ),
    "nodes": Entry(
        "supervise_cmds",
        "Node health: failures per node and why (the last reason; for a burn-in, the check and "
        "measured vs expected); at the profile's node_failure_threshold a node is excluded.",
    ),
    "clusters": Entry(
        "catalog_cmds",
        "List cluster profiles (shipped and your own in ~/.config/olmoctl/clusters).",
    ),
    "recipes": Entry(
        "catalog_cmds",
        "List training recipes (shipped and your own in ~/.config/olmoctl/recipes).",
    ),
    "plan": Entry(
        "plan_cmd",
        "Time, GPU-hours, energy, CO2, memory and checkpoint interval of a run, before launch.",
    ),
    "sweep": Entry(
        "sweep_cmd",
        "Expand a grid / random search into runs NAME-0..n and submit them (returns at once).",
    ),
    "doctor": Entry(
        "doctor_cmd",
        "Check a cluster before a real run: the network plugin loads, the profile's NCCL/FI "
        "variables reach the job, GPUs per node, run dir and data, imports, an all-reduce.",
    ),
    "export": Entry(
        "export_cmd",
        "Convert a run's checkpoint (any world size) into a model directory that "
        "`transformers.AutoModelForCausalLM.from_pretrained(DIR)` loads: config.json + "
        "model.safetensors (+ olmoctl-export.json saying where it came from).",
    ),
    # The login node's half of an ssh cluster: never listed, never completed.
    "_remote": Entry(
        "remote_cmd",
        "Internal: the remote side of an ssh cluster (JSON on stdin/stdout).",
        hidden=True,
    ),
}

# typer's default; the root app leaves it alone (and shows no pretty exceptions anyway).
PRETTY_EXCEPTIONS_SHORT = True


def build(name: str, *, rich_markup_mode: Any = None, suggest_commands: bool = True) -> Any:
    """The click command `name` as typer builds it, from its module's register(app): the
    module is imported here, and only this command's parameters are built. None when the
    module registers no such command."""
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    # __import__, not importlib.import_module: `python -X importtime` sees this one.
    module = getattr(__import__("olmoctl.cli", fromlist=[entry.module]), entry.module)
    sub = typer.Typer()
    module.register(sub)
    for info in sub.registered_commands:
        callback = info.callback
        if (info.name or (callback and typer.main.get_command_name(callback.__name__))) == name:
            return typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=PRETTY_EXCEPTIONS_SHORT,
                rich_markup_mode=rich_markup_mode,
            )
    for group in sub.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=PRETTY_EXCEPTIONS_SHORT,
                rich_markup_mode=rich_markup_mode,
                suggest_commands=suggest_commands,
            )
    return None


def stand_in(name: str) -> click.Command:
    """What `--help` and a TAB need of a command (its summary, whether hidden), without its
    module: click shortens the summary to the terminal's width exactly as the real help."""
    entry = COMMANDS[name]
    return click.Command(name, help=entry.summary, hidden=entry.hidden)


class LazyGroup(TyperGroup):
    """The root group (`typer.Typer(cls=LazyGroup)`): its commands come from COMMANDS, each
    built on first use (`get_command`) and kept for the rest of the invocation."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self.commands.get(cmd_name)
        if cmd is None:
            cmd = build(
                cmd_name,
                rich_markup_mode=self.rich_markup_mode,
                suggest_commands=self.suggest_commands,
            )
            if cmd is not None:
                self.commands[cmd_name] = cmd
        return cmd

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if not args or args[0] in COMMANDS:
            return super().resolve_command(ctx, args)
        # No such command: click and typer suggest close names from self.commands (the ones
        # built so far); let them see every name, as if all had been built.
        built = self.commands
        self.commands = {name: built.get(name) or stand_in(name) for name in COMMANDS}
        try:
            return super().resolve_command(ctx, args)
        finally:
            self.commands = built

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing (widths, shortening, hidden left out), over the stand-ins.
        stand_ins = {name: stand_in(name) for name in COMMANDS}
        TyperGroup(name=self.name, commands=stand_ins).format_commands(ctx, formatter)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        # click's Group.shell_complete, with the stand-ins for the command names (a TAB after
        # `olmoctl ` imports no command module), then the options as click completes them.
        from click.shell_completion import CompletionItem

        results = [
            CompletionItem(name, help=cmd.get_short_help_str())
            for name, cmd in ((n, stand_in(n)) for n in COMMANDS if n.startswith(incomplete))
            if not cmd.hidden
        ]
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results
