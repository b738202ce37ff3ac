"""The state store (SQLite): the only place that speaks SQL. Layer: core -> store; the
store imports nothing from olmoctl.core, olmoctl.cli or olmoctl.backends.

    db.py        Store (connection, WAL, migrations; created on the first change) and Tx
    place.py     the state dir and db file checked before use (0700/0600, no links)
    guard.py     the connection whose sqlite errors become one line (errors.py)
    schema.py    the migrations (append-only)
    models.py    the rows it returns (Run, Attempt, ...) and AttemptState
    runs.py, attempts.py, sweeps.py, nodes.py, watch.py, records.py: the statements
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562), so `olmoctl.store.peek` costs no more than sqlite3.
_WHERE = {
    "Store": "db",
    "Tx": "db",
    "DamagedRow": "errors",
    "StoreBusy": "errors",
    "StoreError": "errors",
    "ATTEMPT_FIELDS": "models",
    "LIVE_STATES": "models",
    "WAITING": "models",
    "Attempt": "models",
    "AttemptState": "models",
    "Checkpoint": "models",
    "NodeHealth": "models",
    "Run": "models",
    "Sweep": "models",
    "RecordIndex": "records",
    "DB_NAME": "schema",
    "MIGRATIONS": "schema",
}

if TYPE_CHECKING:
    from olmoctl.store.db import Store, Tx
    from olmoctl.store.errors import DamagedRow, StoreBusy, StoreError
    from olmoctl.store.models import (
        ATTEMPT_FIELDS,
        LIVE_STATES,
        WAITING,
        Attempt,
        AttemptState,
        Checkpoint,
        NodeHealth,
        Run,
        Sweep,
    )
    from olmoctl.store.records import RecordIndex
    from olmoctl.store.schema import DB_NAME, MIGRATIONS


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'olmoctl.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"olmoctl.store.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ATTEMPT_FIELDS",
    "DB_NAME",
    "LIVE_STATES",
    "MIGRATIONS",
    "WAITING",
    "Attempt",
    "AttemptState",
    "Checkpoint",
    "DamagedRow",
    "NodeHealth",
    "RecordIndex",
    "Run",
    "Store",
    "StoreBusy",
    "StoreError",
    "Sweep",
    "Tx",
]
