"""A sweep's life after planning: create (record + first submissions, undone on failure),
advance (submit waiting points while fewer than P are in flight), cancel."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olmoctl.backends.base import Backend
from olmoctl.backends.registry import backend_for
from olmoctl.core.launch import submit as launch_mod
from olmoctl.core.sweep.arrays import submit_arrays, sweep_dir
from olmoctl.core.sweep.points import Plan
from olmoctl.core.sweep.rows import get
from olmoctl.core.track.runs import find_run, spec_of
from olmoctl.errors import OlmoctlError
from olmoctl.store import WAITING, AttemptState, Store


def _record(store: Store, p: Plan) -> None:
    now = time.time()
    spec0 = p.points[0].spec
    with store.tx() as tx:
        tx.create_sweep(
            p.name,
            recipe=spec0.recipe.name,
            cluster=spec0.cluster.name,
            nodes=spec0.nodes,
            max_parallel=p.max_parallel,
            mode=p.mode,
            definition=p.definition.to_json(),
            points=[{"index": x.index, "name": x.name, "params": x.params} for x in p.points],
            created_at=now,
        )
        for x in p.points:
            # created_at keeps `status` in point order
            tx.create_run(x.spec, state=WAITING, sweep=p.name, created_at=now + x.index * 1e-6)


def _undo(store: Store, p: Plan, created: list[str]) -> None:
    with store.tx() as tx:
        tx.delete_sweep(p.name)
    for d in created:
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class Created:
    name: str
    mode: str
    max_parallel: int
    points: list[dict[str, Any]]  # name, params, job_id (None while waiting)
    arrays: list[str] = field(default_factory=list)
    note: str = ""


def create(
    store: Store,
    p: Plan,
    *,
    backend: Backend | None = None,
) -> Created:
    """Record the sweep and its points, and submit what may start now (returns at once).
    Any failure cancels what was submitted and removes every record and directory."""
    spec0 = p.points[0].spec
    backend = backend or backend_for(spec0)
    backend.check_reachable(spec0)
    _record(store, p)
    created = [x.spec.run_dir for x in p.points if not Path(x.spec.run_dir).exists()]
    sdir = sweep_dir(spec0, p.name)
    if not sdir.exists():
        created.append(str(sdir))
    submitted_arrays: list[str] = []
    try:
        if p.mode == "array":
            submit_arrays(store, p, backend, submitted_arrays)
        else:
            advance(store, p.name, refresh_first=False, backend=backend)
    except BaseException:
        for job in submitted_arrays:
            backend.cancel_array(job)
        if p.mode == "jobs":
            name_dir = {x.name: x.spec.run_dir for x in p.points}
            for name in get(store, p.name).point_names:
                last = store.last_attempt(name)
                if last is not None and last.job_id:
                    with contextlib.suppress(OlmoctlError):
                        backend.cancel(last.job_id, name_dir[name])
        _undo(store, p, created)
        store.discard_if_new()  # the first thing ever recorded: no empty store left behind
        raise
    last = {x.name: store.last_attempt(x.name) for x in p.points}
    jobs = {n: (a.job_id if a is not None else None) for n, a in last.items()}
    return Created(
        p.name,
        p.mode,
        p.max_parallel,
        [{"name": x.name, "params": x.params, "job_id": jobs.get(x.name)} for x in p.points],
        submitted_arrays,
        p.note,
    )


@dataclass
class Progress:
    sweep: str
    submitted: list[tuple[str, str | None]]
    waiting: int
    in_flight: int
    ended: int

    @property
    def done(self) -> bool:
        return self.waiting == 0 and self.in_flight == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "submitted": [{"run": n, "job_id": j} for n, j in self.submitted],
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "ended": self.ended,
            "done": self.done,
        }


def _in_flight(state: str) -> bool:
    # A run's state is its last attempt's state or class (or WAITING): live if a live state.
    return AttemptState(state).is_live


def advance(
    store: Store,
    sweep: str,
    *,
    refresh_first: bool = True,
    backend: Backend | None = None,
    refresh: Callable[..., Any] | None = None,
) -> Progress:
    """Bring the sweep's points up to date (one scheduler query) and submit waiting points
    while fewer than max_parallel are in flight. Safe to call from several processes: the
    points to submit are claimed in one transaction."""
    row = get(store, sweep)
    names = row.point_names
    if refresh_first:
        if refresh is None:
            from olmoctl.core.track.status import refresh
        refresh(store, run_names=names)
    with store.tx() as tx:
        states = {r.name: r.state for r in tx.runs(sweep=sweep)}
        in_flight = sum(_in_flight(s) for s in states.values())
        take = [n for n in names if states.get(n) == WAITING][
            : max(0, row.max_parallel - in_flight)
        ]
        for n in take:
            tx.set_run_state(n, AttemptState.SUBMITTING)
    submitted: list[tuple[str, str | None]] = []
    for i, n in enumerate(take):
        spec = spec_of(find_run(store, n))
        try:
            done = launch_mod.submit_attempt(store, spec, backend, new_run=False)
        except BaseException:
            with store.tx() as tx:  # back in line for the next try
                for m in take[i:]:
                    tx.set_run_state(m, WAITING)
            raise
        submitted.append((n, done.job_id))
    states = {r.name: r.state for r in store.runs(sweep=sweep)}
    waiting = sum(s == WAITING for s in states.values())
    flying = sum(_in_flight(s) for s in states.values())
    return Progress(sweep, submitted, waiting, flying, len(states) - waiting - flying)


def cancel(store: Store, sweep: str, *, refresh: Callable[..., Any] | None = None) -> dict:
    """Cancel every point: waiting ones are never submitted, live ones are scancelled
    (queued before running, so an array's throttle cannot start another meanwhile)."""
    from olmoctl.core.track import control

    names = get(store, sweep).point_names
    with store.tx() as tx:
        waiting = [r.name for r in tx.runs(sweep=sweep, state=WAITING)]
        for n in waiting:
            tx.set_run_state(n, AttemptState.CANCELLED)
    if refresh is None:
        from olmoctl.core.track.status import refresh
    refresh(store, run_names=names)
    live = []
    for n in names:
        last = store.last_attempt(n)
        if last is not None and last.is_live and last.job_id:
            live.append((last.state != AttemptState.PENDING, n))
    cancelled, errors = [], []
    for _, n in sorted(live):
        try:
            cancelled.append({"run": n, "job_id": control.cancel(n, store)})
        except OlmoctlError as e:
            errors.append(f"{n}: {e}")
    return {"sweep": sweep, "cancelled": cancelled, "never_submitted": waiting, "errors": errors}
