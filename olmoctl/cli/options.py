"""Options shared by several commands, so every command spells them the same way; and the
range check every count, size and time option goes through (`bounded`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click
import typer

from olmoctl.cli import complete
from olmoctl.errors import UsageError, shown

N = TypeVar("N", int, float)

# The same limits as schemas/bounds.py and core/sweep/spec.py (not imported from there: the
# CLI's startup imports no pydantic; tests/unit/test_exits.py checks they agree).
NODES_MAX = 1_000_000
INT64_MAX = 2**63 - 1
MAX_POINTS = 10_000
DAY_S = 86_400.0


class _AsciiNumber(click.ParamType):
    """click's INT/FLOAT taking ASCII digits only: int() and float() also read Arabic-Indic or
    full-width digits (U+0661 U+0662 reads as 12), which nothing downstream (Slurm, bash,
    the job's environment) does."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = base.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.isascii():
            self.fail(
                f"{shown(value, 40)} is not a valid {self.name}: use the digits 0-9", param, ctx
            )
        return self.base.convert(value, param, ctx)

    def __repr__(self) -> str:
        return f"ASCII_{self.base!r}"


# Every int and float option takes one of these (`click_type=`; tests/unit/test_ascii_numbers.py
# walks the commands for any that does not).
INT = _AsciiNumber(click.INT)
FLOAT = _AsciiNumber(click.FLOAT)


def bounded(
    flag: str, low: float | None = None, high: float | None = None, *, above: bool = False
) -> Callable[[N | None], N | None]:
    """A typer callback refusing a value of `flag` outside [low, high] (above `low` when
    `above`), or a float that is inf/nan: one line, exit 2, before the command runs."""

    def check(value: N | None) -> N | None:
        if value is None:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number, got {value}")
        if low is not None and (value <= low if above else value < low):
            word = "above" if above else "at least"
            raise UsageError(f"{flag} must be {word} {_num(low)}, got {_num(value)}")
        if high is not None and value > high:
            raise UsageError(f"{flag} must be at most {_num(high)}, got {_num(value)}")
        return value

    return check


def one_of(flag: str, choices: tuple[str, ...]) -> Callable[[str | None], str | None]:
    """A typer callback refusing a value of `flag` that is not one of `choices`."""

    def check(value: str | None) -> str | None:
        if value is None or value in choices:
            return value
        import difflib

        near = difflib.get_close_matches(value, choices, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise UsageError(f"{flag} must be one of {', '.join(choices)}, got {value!r}{hint}")

    return check


def _num(x: float) -> str:
    # 1000000, not 1e+06; 0.5 as 0.5
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e20 else f"{x:g}"


OVERRIDE = typer.Option(
    [],
    "-o",
    "--override",
    metavar="KEY=VALUE",
    help="Override a recipe key (optim.lr=3e-4) or a cluster key (cluster.account=X). Repeatable.",
)
RECIPE_HELP = "Recipe name or path to a YAML file."
CLUSTER_HELP = "Cluster profile name or path to a YAML file."


def recipe(default: Any = None, help: str = RECIPE_HELP) -> typer.models.ArgumentInfo:
    """The RECIPE argument (optional unless `default` is `...`), completed from the catalog."""
    return typer.Argument(default, autocompletion=complete.recipes, help=help)


def cluster(default: Any = None, help: str = CLUSTER_HELP) -> typer.models.OptionInfo:
    """`--cluster/-c` (optional unless `default` is `...`), completed from the profiles."""
    return typer.Option(default, "--cluster", "-c", autocompletion=complete.clusters, help=help)


CLUSTER = cluster(...)
NODES = typer.Option(
    1,
    "--nodes",
    "-N",
    help="Number of nodes.",
    click_type=INT,
    callback=bounded("--nodes", 1, NODES_MAX),
)
SPARE_NODES = typer.Option(
    None,
    "--spare-nodes",
    help="Extra nodes to allocate and burn in; training starts on the best --nodes of them "
    "(default: the profile's burnin.spare_nodes).",
    click_type=INT,
    callback=bounded("--spare-nodes", 0, NODES_MAX),
)
NAME = typer.Option(None, "--name", help="Run name (default: RECIPE-CLUSTER).")
TIME = typer.Option(None, "--time", "-t", help="Time limit HH:MM:SS (default: the profile's).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
FORCE = typer.Option(
    False,
    "--force",
    help="Go on although the run would not fit in GPU memory (the estimate `plan` shows) or "
    "--time is above the site's limit for the node count; each is then a warning.",
)
ATTEMPT_HELP = "Attempt number (default: last)."


def attempt(help: str = ATTEMPT_HELP) -> typer.models.OptionInfo:
    """`--attempt K`: attempts are numbered from 1."""
    return typer.Option(
        None, "--attempt", help=help, click_type=INT, callback=bounded("--attempt", 1)
    )


# What `status` says on a store without runs (runs_cmds says it without loading the table code).
NO_RUNS = "no runs yet: olmoctl launch RECIPE --cluster CLUSTER"
