"""Run names in use: the store's runs and the run directories on disk. The one place that
picks a free name and says "already exists" (launch, launch --from, sweeps); the run
directory check itself is backends/files.py's, which LocalFiles shares."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from olmoctl.backends.files import dir_taken, holds_run
from olmoctl.errors import UsageError, shown

if TYPE_CHECKING:
    from olmoctl.schemas import RunSpec
    from olmoctl.store import Store


def run_exists(name: str, *, hint: bool = True) -> UsageError:
    more = f"; pick another --name (e.g. {name}-2)" if hint else ""
    return UsageError(f"run {shown(name)} already exists{more}")


class Taken:
    """The names taken under one runs root, read once (a sweep asks about many names)."""

    def __init__(self, store: Store, runs_root: str) -> None:
        self.names = set(store.run_names())
        self.runs_root = runs_root

    def __contains__(self, name: str) -> bool:
        return name in self.names or holds_run(Path(self.runs_root, name))

    def first_free(self, base: str) -> str:
        """`base`, or `base-2`, `base-3`...: the first name free in the store and on disk."""
        for i in range(1, 10_000):
            name = base if i == 1 else f"{base}-{i}"
            if name not in self:
                return name
        raise UsageError(f"no free run name for {shown(base)}")


def free_name(store: Store, base: str, runs_root: str) -> str:
    return Taken(store, runs_root).first_free(base)


def check_new(store: Store, spec: RunSpec) -> None:
    """Refuse a name a run already has, or a run directory on this machine that holds one."""
    if store.get_run(spec.name) is not None:
        raise run_exists(spec.name)
    if spec.cluster.ssh is None and holds_run(spec.run_dir):
        raise dir_taken(spec.run_dir)
