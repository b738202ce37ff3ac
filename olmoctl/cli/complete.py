"""Shell completion (typer's own: `olmoctl --install-completion`): run names from the local
store, recipes and clusters from the catalog's folders. A TAB reads two folder listings or
one read-only SQL query: no Slurm, no SSH, no YAML parsing, no pydantic."""

from __future__ import annotations

import os

import click


def _state_dir(ctx: click.Context | None) -> str | None:
    root = ctx.find_root() if ctx is not None else None
    given = root.params.get("state_dir") if root is not None else None
    return given or os.environ.get("OLMOCTL_STATE_DIR")


def _matching(names: list[str], incomplete: str) -> list[str]:
    return [n for n in names if n.startswith(incomplete)]


def runs(ctx: click.Context, incomplete: str) -> list[str]:
    from olmoctl import paths
    from olmoctl.store.peek import run_names

    return _matching(run_names(paths.state_dir(_state_dir(ctx)) / paths.DB_NAME), incomplete)


def recipes(incomplete: str) -> list[str]:
    from olmoctl import paths

    return _matching(sorted(paths.catalog_files("recipes")), incomplete)


def clusters(incomplete: str) -> list[str]:
    from olmoctl import paths

    return _matching(sorted(paths.catalog_files("clusters")), incomplete)
