"""Acting on a run's live attempt: cancel."""

from __future__ import annotations

from olmoctl.backends.registry import backend_for
from olmoctl.core.track.runs import find_run, spec_of
from olmoctl.errors import UsageError, shown
from olmoctl.store import AttemptState, Store


def cancel(run_name: str, store: Store | None = None) -> str:
    store = store or Store()
    run = find_run(store, run_name)
    last = store.last_attempt(run_name)
    if last is None or not last.is_live or not last.job_id:
        state = last.state if last else run.state
        raise UsageError(f"run {shown(run_name)} has no live job to cancel (it is {state})")
    spec = spec_of(run)
    backend = backend_for(spec)
    backend.cancel(last.job_id, spec.run_dir)
    with store.tx() as tx:
        tx.update_attempt(last.id, state=AttemptState.CANCELLED, reason="cancelled by user")
        tx.set_run_state(run_name, AttemptState.CANCELLED)
    return str(last.job_id)
