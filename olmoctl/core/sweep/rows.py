"""The sweeps table's row for one sweep, and the state its points wait in before submission."""

from __future__ import annotations

import json
from typing import Any

from olmoctl.core.store import Store
from olmoctl.errors import UsageError
from olmoctl.schemas.errors import suggest

WAITING = "WAITING"  # recorded, not yet submitted (olmoctl's own state, not Slurm's)


def get(store: Store, name: str, *, missing_ok: bool = False) -> Any:
    row = store.connect().execute("SELECT * FROM sweeps WHERE name = ?", (name,)).fetchone()
    if row is None and not missing_ok:
        names = [r["name"] for r in store.connect().execute("SELECT name FROM sweeps")]
        hint = suggest(name, names) if names else "; no sweeps recorded yet"
        raise UsageError(f"no sweep named {name!r}{hint}")
    return row


def point_names(row: Any) -> list[str]:
    return [p["name"] for p in json.loads(row["points_json"])]
