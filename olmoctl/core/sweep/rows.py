"""One sweep's row by name (with a "did you mean" when there is none), and the state its
points wait in before submission."""

from __future__ import annotations

from typing import Literal, overload

from olmoctl.errors import UsageError
from olmoctl.schemas.errors import suggest
from olmoctl.store import WAITING, Store, Sweep

__all__ = ["WAITING", "get", "point_names"]


@overload
def get(store: Store, name: str, *, missing_ok: Literal[False] = False) -> Sweep: ...
@overload
def get(store: Store, name: str, *, missing_ok: bool) -> Sweep | None: ...
def get(store: Store, name: str, *, missing_ok: bool = False) -> Sweep | None:
    row = store.get_sweep(name)
    if row is None and not missing_ok:
        names = store.sweep_names()
        hint = suggest(name, names) if names else "; no sweeps recorded yet"
        raise UsageError(f"no sweep named {name!r}{hint}")
    return row


def point_names(row: Sweep) -> list[str]:
    return row.point_names
