"""A sqlite3 connection whose every error becomes one line naming the store's file.

A damaged database can fail on any statement or any fetch (a truncated file reads fine
until a missing page is needed), so the translation sits on the connection and its
cursors, not on a few call sites.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from olmoctl.store.errors import translate

# Mistakes in olmoctl's own SQL stay tracebacks: they are bugs, not the file's fault.
_OURS = (sqlite3.ProgrammingError, sqlite3.InterfaceError)


class GuardedConnection(sqlite3.Connection):
    store_path: Path = Path("?")

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except _OURS:
            raise
        except sqlite3.Error as e:
            raise translate(e, self.store_path) from None

    def cursor(self, factory: Any = None) -> Any:  # type: ignore[override]
        return super().cursor(factory or GuardedCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)


class GuardedCursor(sqlite3.Cursor):
    def _guard(self) -> Any:
        conn = self.connection
        assert isinstance(conn, GuardedConnection)
        return conn.guard()

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        with self._guard():
            return super().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> Any:  # type: ignore[override]
        with self._guard():
            return super().executemany(sql, seq)

    def fetchone(self) -> Any:
        with self._guard():
            return super().fetchone()

    def fetchall(self) -> list[Any]:
        with self._guard():
            return super().fetchall()

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        with self._guard():
            return super().fetchmany(size)

    def __next__(self) -> Any:
        with self._guard():
            return super().__next__()
