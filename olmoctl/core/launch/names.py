"""Run names in use: the store's runs and the run directories on disk. The one place that
picks a free name and says "already exists" (launch, launch --from, sweeps); the run
directory check itself is backends/files.py's, which LocalFiles shares: a new run's directory
is made fresh, so anything already at its path (a run's, a foreign folder, a link) takes
the name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from olmoctl.backends.files import new_dir_problem
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
        return name in self.names or os.path.lexists(Path(self.runs_root, name))

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
    """Refuse a name a run already has, or, on this machine, a run directory path that
    anything is at already (a run's, a foreign folder, a link: never adopted)."""
    if store.get_run(spec.name) is not None:
        raise run_exists(spec.name)
    if spec.cluster.ssh is None and (problem := new_dir_problem(spec.run_dir)) is not None:
        raise problem
