"""The terminal is an output, not a markup language: every value olmoctl did not write itself
(run directories, the store, profiles, events, Slurm, hosts) is printed as data. rich never
parses it (markup such as `[/x]` or `[link=...]`, `:emoji:` codes), its control characters
(ESC, CR, BEL, bidi overrides...) are shown as errors.visible shows them (`\\x1b`), and a
table never cuts a name (`show`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from olmoctl.errors import visible

if TYPE_CHECKING:  # rich is imported when something is drawn: startup stays light
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

# A column narrower than this (or than its longest word) reads as noise: below it, `show`
# prints one block per row instead of the table.
MIN_COLUMN = 6


def lines(text: str) -> str:
    """Multi-line data (a job's log, a recorded script, a diff): newlines and tabs kept, every
    other control character shown as `visible` shows it."""
    if text.isprintable():
        return text
    return "\n".join(
        "\t".join(visible(part) for part in line.split("\t")) for line in text.split("\n")
    )


def echo(line: str, *, err: bool = False, nl: bool = True) -> None:
    """One plain line that holds data (click never parses markup; control characters shown)."""
    typer.echo(visible(line), err=err, nl=nl)


def data(value: object, style: str = "") -> Text:
    """`value` for rich (a cell, a line, a spinner's text, a title): a Text, which rich never
    parses for markup or emoji codes, with its control characters shown."""
    from rich.text import Text

    return Text(visible(str(value)), style=style)


def table(title: object, columns: Sequence[str], names: Sequence[str] = ()) -> Table:
    """A table for `show`: the columns in `names` (run, recipe, cluster, node, sweep names)
    stay on one line and fold only past the terminal's width; every column folds rather than
    cut its values with an ellipsis."""
    from rich.table import Table

    t = Table(title=data(title))
    for col in columns:
        t.add_column(data(col), no_wrap=col in names, overflow="fold")  # a header may be data
    return t


def show(console: Console, t: Table) -> None:
    """Print `t` with nothing cut: as is when it fits; else names at full width and the other
    columns sharing what is left (whole words first); else, when even that leaves a column
    under MIN_COLUMN, one block per row (`header: value` lines under the first value)."""
    widths = _widths(console, t)
    if widths is None:
        _records(console, t)
        return
    for column, width in zip(t.columns, widths, strict=True):
        column.width = width
    console.print(t)


def _widths(console: Console, t: Table) -> list[int | None] | None:
    """Content widths per column (None: rich's own, the table fits), or None: no room."""
    from rich.measure import Measurement

    spans = []
    for c in t.columns:
        cells = [c.header, *c.cells]
        sizes = [Measurement.get(console, console.options, cell) for cell in cells]
        spans.append((max(m.minimum for m in sizes), max(m.maximum for m in sizes)))
    # Borders and padding as rich counts them (its own helpers, so any box or padding works).
    overhead = t._extra_width + sum(t._get_padding_width(i) for i in range(len(t.columns)))
    room = console.width - overhead
    natural = [most for _, most in spans]
    if sum(natural) <= room:
        return [None] * len(natural)
    other = [i for i, c in enumerate(t.columns) if not c.no_wrap]
    left = room - sum(natural[i] for i in range(len(spans)) if i not in other)
    words = [spans[i][0] for i in other]
    if sum(words) <= left:  # every word whole; the rest shared out up to each natural width
        more = _fill(left - sum(words), [natural[i] - spans[i][0] for i in other])
        got = [w + m for w, m in zip(words, more, strict=True)]
    else:
        got = _fold_longest(left, words)
    if any(g < min(MIN_COLUMN, w) for g, w in zip(got, words, strict=True)):
        return None
    out: list[int | None] = list(natural)
    for i, g in zip(other, got, strict=True):
        out[i] = g
    return out


def _fold_longest(total: int, words: list[int]) -> list[int]:
    """Too little room for every word: the columns with the shortest words keep them whole
    (as many as leave MIN_COLUMN to each other one); the others share the rest and fold."""
    got = [0] * len(words)
    order = sorted(range(len(words)), key=lambda i: words[i])
    for k, i in enumerate(order):
        if total - words[i] < MIN_COLUMN * (len(order) - k - 1):
            rest = order[k:]
            for j, share in zip(rest, _fill(total, [words[j] for j in rest]), strict=True):
                got[j] = share
            break
        got[i] = words[i]
        total -= words[i]
    return got


def _fill(total: int, caps: list[int]) -> list[int]:
    """Shares of `total`, each at most its cap, as equal as the caps allow (water filling)."""
    out = [0] * len(caps)
    left = max(total, 0)
    order = sorted(range(len(caps)), key=lambda i: caps[i])
    for k, i in enumerate(order):
        out[i] = min(caps[i], left // (len(caps) - k))
        left -= out[i]
    return out


def _records(console: Console, t: Table) -> None:
    """`t` too wide for the terminal: each row as its first value, then `header: value`."""
    from rich.text import Text

    def text(cell: RenderableType) -> Text:
        # Data cells are Text (`data`); a str cell is olmoctl's own markup.
        return cell if isinstance(cell, Text) else Text.from_markup(str(cell), emoji=False)

    if t.title is not None:
        console.print(text(t.title))
    first, *rest = t.columns
    others = [(text(c.header), list(c.cells)) for c in rest]
    for row, head in enumerate(first.cells):
        console.print(text(head), style="bold")
        for header, cells in others:
            console.print(Text.assemble("  ", header, ": ", text(cells[row])))
