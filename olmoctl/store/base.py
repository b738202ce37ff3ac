"""What every query module builds on: the connection its statements run on."""

from __future__ import annotations

import sqlite3


class Queries:
    """A mixin's access to the database: the Store's connection (reads, autocommit) or
    the open transaction's (Tx)."""

    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError
