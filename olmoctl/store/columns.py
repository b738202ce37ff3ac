"""One row's columns read by kind: THE reader of every store row (models.py).

SQLite lets any value into any column (text where a time is, 1e308, a blob), and
the store can be edited by hand or by a broken tool. A value of the wrong kind becomes the
column's default and a note in `bad`, so one damaged row is one bad row: it never reaches
arithmetic, formatting, JSON or pydantic as a TypeError or ValidationError.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from typing import Any

# Times are Unix seconds: beyond this (year 5138) datetime cannot format them.
_TIME_MAX = 1e11
# Counts and steps fit SQLite's own integers.
_INT_MAX = 2**63 - 1


def is_number(v: Any) -> bool:
    """An int or a finite float (never a bool)."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= _INT_MAX


def _time(v: Any) -> bool:
    return is_number(v) and 0 <= v < _TIME_MAX


def _text(v: Any) -> bool:
    # Control characters (NUL included) are text, shown escaped (cli/text.py); lone
    # surrogates can be neither printed nor encoded.
    if not isinstance(v, str):
        return False
    try:
        v.encode()
    except UnicodeEncodeError:
        return False
    return True


def _path(v: Any) -> bool:
    return _text(v) and "\x00" not in v  # the OS takes no path with a NUL in it


_KINDS = {
    "_text": "text",
    "_path": "a path",
    "_int": "an integer",
    "_time": "a time",
    "is_number": "a number",
}


class Columns:
    """The columns of one row; each read says its kind and default."""

    def __init__(self, row: sqlite3.Row) -> None:
        self._row = row
        self._keys = set(row.keys())
        self.bad: list[str] = []

    def _get(self, col: str, ok: Callable[[Any], bool], default: Any, nullable: bool) -> Any:
        """Column COL if `ok(value)` (or NULL where allowed), else `default` and a note."""
        if col not in self._keys:  # an older schema: the column is not there yet
            return default
        value = self._row[col]
        if (value is None and nullable) or (value is not None and ok(value)):
            return value
        kind = _KINDS.get(ok.__name__, "usable")
        held = "" if isinstance(value, str) else f" ({type(value).__name__})"
        self.bad.append(f"{col} is not {kind}{held}")
        return default

    def text(self, col: str, default: str = "?") -> str:
        return str(self._get(col, _text, default, False))

    def path(self, col: str, default: str = "?") -> str:
        """A file system path: text without NUL."""
        return str(self._get(col, _path, default, False))

    def opt_text(self, col: str) -> str | None:
        value = self._get(col, _text, None, True)
        return None if value is None else str(value)

    def int(self, col: str, default: int = 0) -> int:
        return int(self._get(col, _int, default, False))

    def opt_int(self, col: str) -> int | None:
        return self._get(col, _int, None, True)  # type: ignore[no-any-return]

    def number(self, col: str, default: float = 0) -> Any:
        return self._get(col, is_number, default, False)

    def opt_number(self, col: str) -> Any:
        return self._get(col, is_number, None, True)

    def time(self, col: str, default: float = 0) -> Any:
        return self._get(col, _time, default, False)

    def opt_time(self, col: str) -> Any:
        return self._get(col, _time, None, True)

    def raw(self, col: str) -> Any:
        return self._row[col] if col in self._keys else None

    @property
    def damage(self) -> str | None:
        return "; ".join(self.bad) or None
