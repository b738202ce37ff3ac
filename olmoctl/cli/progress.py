"""Waiting with a visible reason: a spinner with the Slurm state, e.g. PENDING (Resources)."""

from __future__ import annotations

import time

from rich.console import Console

from olmoctl.store import AttemptState, Store

POLL_S = 2.0


def wait_for_run(
    store: Store, name: str, *, quiet: bool = False, timeout: float | None = None
) -> str:
    """Poll until the run's last attempt leaves the live states; returns the final state."""
    from olmoctl.core import status as core

    console = Console(stderr=True, quiet=quiet)
    deadline = None if timeout is None else time.monotonic() + timeout
    with console.status(f"{name}: waiting") as spinner:
        while True:
            core.refresh(store, run_names=[name])
            last = store.last_attempt(name)
            state = last.state if last else AttemptState.UNKNOWN
            if last is not None and not last.is_live:  # no attempt yet: UNKNOWN, wait
                return state
            reason = f" ({last.reason})" if last and last.reason else ""
            spinner.update(f"{name}: job {last.job_id if last else '?'} {state}{reason}")
            if deadline is not None and time.monotonic() > deadline:
                return state
            time.sleep(POLL_S)
