"""The state store (SQLite): the only place that speaks SQL. Layer: core -> store; the
store imports nothing from olmoctl.core, olmoctl.cli or olmoctl.backends.

    db.py        Store (connection, WAL, migrations, 0600/0700) and Tx (one transaction)
    schema.py    the migrations (append-only)
    models.py    the rows it returns (Run, Attempt, ...) and AttemptState
    runs.py, attempts.py, sweeps.py, nodes.py, watch.py, records.py: the statements
"""

from olmoctl.store.db import Store, Tx
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

__all__ = [
    "ATTEMPT_FIELDS",
    "DB_NAME",
    "LIVE_STATES",
    "MIGRATIONS",
    "WAITING",
    "Attempt",
    "AttemptState",
    "Checkpoint",
    "NodeHealth",
    "RecordIndex",
    "Run",
    "Store",
    "Sweep",
    "Tx",
]
