"""Waiting with a visible reason: a spinner with the Slurm state, e.g. PENDING (Resources)."""

from __future__ import annotations

import time

from rich.console import Console

from olmoctl.cli.text import data
from olmoctl.store import Attempt, Store

POLL_S = 2.0


def wait_for_run(
    store: Store, name: str, *, quiet: bool = False, timeout: float | None = None
) -> Attempt | None:
    """Poll until the run's last attempt leaves the live states; returns that attempt
    (cli.exits.of_run_end turns it into the exit status)."""
    from olmoctl.core.track import status as core

    console = Console(stderr=True, quiet=quiet)
    deadline = None if timeout is None else time.monotonic() + timeout
    with console.status(data(f"{name}: waiting")) as spinner:
        while True:
            core.refresh(store, run_names=[name])
            last = store.last_attempt(name)
            if last is not None and not last.is_live:  # no attempt yet: wait
                return last
            state = last.state if last else "UNKNOWN"
            reason = f" ({last.reason})" if last and last.reason else ""
            spinner.update(data(f"{name}: job {last.job_id if last else '?'} {state}{reason}"))
            if deadline is not None and time.monotonic() > deadline:
                return last
            time.sleep(POLL_S)
