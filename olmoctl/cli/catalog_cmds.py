"""`olmoctl clusters` and `olmoctl recipes`: what can be launched, and where."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from olmoctl.cli import options, text
from olmoctl.errors import UsageError, shown_plain

if TYPE_CHECKING:
    from olmoctl.core.launch.catalog import Entry


def clusters(as_json: bool = options.JSON) -> None:
    """List cluster profiles (shipped and your own in ~/.config/olmoctl/clusters)."""
    from olmoctl.core.launch import catalog

    rows, bad = [], []
    for entry in catalog.available("clusters").values():
        try:
            c = catalog.load_cluster(str(entry.path))
        except UsageError as e:  # one bad file is one bad entry; the others still list
            bad.append(_bad(entry, e))
            continue
        rows.append(
            {
                "name": entry.name,
                "source": entry.source,
                "scheduler": c.scheduler,
                "vendor": c.vendor,
                "gpu": c.gpu_type or "-",
                "gpus_per_node": c.gpus_per_node,
                "tasks_per_node": c.tasks_per_node,
                "partition": c.partition,
                "max_nodes": c.max_nodes,
                "max_time": c.max_time,
                "description": c.description,
                "path": str(entry.path),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows + bad, indent=2))
        return
    _table(
        "Cluster profiles",
        rows,
        ["name", "vendor", "gpu", "gpus_per_node", "partition", "max_nodes", "max_time", "source"],
    )
    _report(bad)


def recipes(as_json: bool = options.JSON) -> None:
    """List training recipes (shipped and your own in ~/.config/olmoctl/recipes)."""
    from olmoctl.core.launch import catalog

    rows, bad = [], []
    for entry in catalog.available("recipes").values():
        try:
            r = catalog.load_recipe(str(entry.path))
        except UsageError as e:
            bad.append(_bad(entry, e))
            continue
        rows.append(
            {
                "name": entry.name,
                "source": entry.source,
                "params": r.model.num_params(),
                "layers": r.model.n_layers,
                "d_model": r.model.d_model,
                "heads": r.model.n_heads,
                "seq_len": r.train.seq_len,
                "global_batch_tokens": r.train.tokens_per_step,
                "steps": r.train.total_steps,
                "lr": r.optim.lr,
                "description": r.description,
                "path": str(entry.path),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows + bad, indent=2))
        return
    for row in rows:
        row["params"] = _human(row["params"])
        row["global_batch_tokens"] = _human(row["global_batch_tokens"])
    _table(
        "Recipes",
        rows,
        ["name", "params", "layers", "d_model", "heads", "global_batch_tokens", "steps", "lr"],
    )
    _report(bad)


def _bad(entry: Entry, err: UsageError) -> dict[str, str]:
    """A file that does not load, as an entry: its name, where it is, and why (one line)."""
    return {"name": entry.name, "source": entry.source, "path": str(entry.path), "error": str(err)}


def _report(bad: list[dict[str, str]]) -> None:
    for b in bad:
        text.echo(f"olmoctl: skipped {shown_plain(b['name'], 60)}: {b['error']}", err=True)


def _human(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


# Headers that wrap at their spaces, so that a narrow terminal leaves room for the names.
_HEADERS = {
    "gpus_per_node": "GPUs per node",
    "max_nodes": "max nodes",
    "max_time": "max time",
    "global_batch_tokens": "batch tokens",
}


def _table(title: str, rows: list[dict], columns: list[str]) -> None:
    from rich.console import Console

    table = text.table(title, [_HEADERS.get(c, c) for c in columns], names=["name"])
    for row in rows:
        table.add_row(*(text.data(row[c]) for c in columns))
    text.show(Console(), table)


def register(app: typer.Typer) -> None:
    app.command("clusters")(clusters)
    app.command("recipes")(recipes)
