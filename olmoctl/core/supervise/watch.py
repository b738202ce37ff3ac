"""resume and watch: act on each run's state by class. Infrastructure failures are resumed
(with backoff and a budget) from the newest complete checkpoint, bad nodes excluded; code
errors and OOM never; a full checkpoint filesystem (STORAGE) once there is room again
(core/supervise/space.py). Two watchers never act on the same run (a lease in the store)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from olmoctl.backends.registry import backend_for
from olmoctl.core.launch.specs import SpecConfig
from olmoctl.core.launch.submit import Launched, submit_attempt
from olmoctl.core.supervise import stragglers
from olmoctl.core.supervise.notify import Notice
from olmoctl.core.supervise.space import room_for
from olmoctl.core.supervise.stragglers import StragglerPolicy
from olmoctl.core.track import attempts as att
from olmoctl.core.track import classify as cl
from olmoctl.core.track import events as ev
from olmoctl.core.track import status
from olmoctl.core.track.health import excluded
from olmoctl.core.track.runs import find_run, spec_of
from olmoctl.errors import UsageError, shown
from olmoctl.fileread import Refused
from olmoctl.store import WAITING, Attempt, AttemptState, DamagedRow, Run, Store


def log_action(store: Store, run: str | None, action: str, detail: str = "") -> None:
    with store.tx() as tx:
        tx.log_action(run, action, detail)
    try:
        with open(store.dir / "watch.log", "a") as f:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"{stamp} {run or '-'} {action} {detail}\n")
    except OSError:
        pass


@dataclass
class Resumed:
    run: str
    action: str  # "submitted" (a new job) or "steered" (Slurm's requeued job, nodes excluded)
    job_id: str | None
    excluded: list[str] = field(default_factory=list)
    torn: list[int] = field(default_factory=list)
    launched: Launched | None = None


def resume(
    store: Store,
    name: str,
    *,
    nodes: int | None = None,
    overrides: list[str] | None = None,
    refresh: bool = True,
) -> Resumed:
    run = find_run(store, name)
    if refresh:
        status.refresh(store, run_names=[name])
        run = find_run(store, name)
    spec = spec_of(run)
    backend = backend_for(spec)
    bad = excluded(store, spec.cluster.name, spec.cluster.node_failure_threshold)
    last = store.last_attempt(name)
    if last is not None and last.is_live:
        requeued = last.restart_index > 0 and last.state in (
            AttemptState.PENDING,
            AttemptState.REQUEUED,
        )
        # Slurm requeued the job itself (after a node failure): steer it off bad nodes.
        if requeued and bad and backend.exclude_pending(last.job_id, bad):
            return Resumed(name, "steered", last.job_id, bad)
        raise UsageError(
            f"run {shown(name)} is still {last.state} (job {last.job_id}); "
            f"cancel it first (olmoctl cancel {name}) or let it run"
        )
    if run.state == AttemptState.COMPLETED or (last is not None and last.klass == cl.COMPLETED):
        raise UsageError(f"run {shown(name)} completed; launch a new run (olmoctl launch --from)")
    why = backend.files.untrusted(spec.run_dir)
    if why is not None:  # the job would load what others may have put there
        raise UsageError(f"run {shown(name)} not resumed: {why}")
    new_spec = SpecConfig.from_spec(
        spec, same_run=True, nodes=nodes, overrides=overrides, exclude_nodes=bad
    ).build()
    ckpts = ev.complete_checkpoints(spec.run_dir, backend.files)
    torn = [step for step, _, complete in ckpts if not complete]
    done = submit_attempt(store, new_spec, backend, new_run=False)
    with store.tx() as tx:
        tx.set_run_spec(name, new_spec)
        row = tx.last_attempt(name)
        assert row is not None  # submit_attempt just recorded it
        evidence = {
            "resumed_after": last.attempt_no if last else None,
            "excluded_nodes": bad,
            "torn_checkpoints_skipped": torn,
        }
        tx.update_attempt(row.id, evidence=evidence)
    return Resumed(name, "submitted", done.job_id, bad, torn, done)


# -- watch ------------------------------------------------------------------------------
@dataclass
class WatchPolicy:
    max_retries: int = 5
    backoff_s: float = 30.0  # doubles with each consecutive retry of the same run
    lease_s: float = 120.0
    stragglers: StragglerPolicy = field(default_factory=StragglerPolicy)


Notify = Callable[[Notice], None]


def _quiet(notice: Notice) -> None:
    return None


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def take_lease(store: Store, run: str, owner: str, ttl: float) -> bool:
    """Atomically take or renew the run's lease; False when another live watcher holds it."""
    with store.tx() as tx:
        return tx.take_lease(run, owner, ttl)


def release_leases(store: Store, owner: str) -> None:
    if not store.exists():  # watching an empty store took no lease: create none
        return
    with store.tx() as tx:
        tx.release_leases(owner)


def hung(store: Store, run: Run) -> float | None:
    """Seconds without training progress if the run's RUNNING attempt exceeds the cluster's
    hang timeout, else None."""
    last = store.last_attempt(run.name)
    if last is None or last.state != AttemptState.RUNNING:
        return None
    spec = spec_of(run)
    events = ev.read_events(run.run_dir, fs=backend_for(spec).files)
    seg = att.segment(events, last.job_id, last.restart_index)
    progress = att.last_progress(seg) or last.started_at
    if progress is None:
        return None
    idle = time.time() - progress
    return idle if idle > spec.cluster.hang_timeout_s else None


def _retries(store: Store, name: str) -> int:
    """Consecutive infrastructure endings since the last attempt that made progress."""
    n = 0
    for a in reversed(store.attempts(name)):
        if a.klass in cl.INFRA or a.klass == cl.STORAGE:
            n += 1
        else:
            break
    return n


def tick(
    store: Store,
    owner: str,
    policy: WatchPolicy,
    runs: list[str] | None = None,
    notify: Notify = _quiet,
) -> list[str]:
    """One pass: refresh (one batched query), then act on every run we hold the lease of.
    Returns a line per action taken; `notify` gets a Notice for each (core/supervise/notify.py)."""
    status.refresh(store, run_names=runs)
    done: list[str] = _advance_sweeps(store, owner, policy) if runs is None else []
    for run in store.runs() if runs is None else [find_run(store, r) for r in runs]:
        name = run.name
        if run.state == AttemptState.COMPLETED:
            continue
        last = store.last_attempt(name)
        if last is None:
            continue
        if runs is None and _damaged(run):
            continue  # one damaged row: that run is left alone, the others are watched
        if not take_lease(store, name, owner, policy.lease_s):
            continue
        try:
            idle = hung(store, run)
        except Refused as e:  # its events.jsonl is not a regular file: nothing to judge by
            if _once(store, name, f"unread:{last.id}", str(e)):
                done.append(f"{name}: left alone: {e}")
            continue
        if idle is not None:
            backend_for(spec_of(run)).cancel(last.job_id, run.run_dir)
            with store.tx() as tx:
                tx.update_attempt(last.id, state=AttemptState.CANCELLED)
                a = tx.last_attempt(name)
                assert a is not None
                att.classify_ended(
                    tx,
                    run,
                    a,
                    backend_for(spec_of(run)),
                    rank_files={},
                    batch_log=None,
                    hang=True,
                )
            log_action(store, name, "cancel-hung", f"job {last.job_id} idle {idle:.0f}s")
            done.append(f"{name}: job {last.job_id} hung ({idle:.0f}s without progress)")
            hang = {"job_id": last.job_id, "idle_s": round(idle), "step": last.last_step}
            notify(Notice("hang", name, f"job {last.job_id} cancelled: {idle:.0f}s idle", hang))
            last = store.last_attempt(name)
            assert last is not None
        if last.is_live:
            lines, notices = stragglers.check(store, run, last, policy.stragglers, log_action)
            done += lines
            for n in notices:
                notify(n)
            _steer(store, run, last, done, notify)
            continue
        klass = last.klass
        if klass in (cl.CODE_ERROR, cl.OOM, cl.UNKNOWN):
            if _once(store, name, f"not-retried:{last.id}", f"{klass}: {last.reason}"):
                done.append(f"{name}: {klass} is NOT retried: {last.reason}")
            continue
        if klass == cl.STORAGE and not _has_room(run, last):
            key, why = f"no-space:{last.id}", f"{klass}: {last.reason}"
            if _once(store, name, key, why):
                done.append(f"{name}: {klass} is NOT retried until space exists: {last.reason}")
            continue
        if klass not in cl.INFRA and klass != cl.STORAGE:
            continue
        retries = _retries(store, name)
        if retries > policy.max_retries:
            why = f"{retries} infrastructure failures in a row"
            if _once(store, name, f"gave-up:{last.id}", why):
                done.append(f"{name}: gave up after {why}")
                gave_up = {"retries": retries, "max_retries": policy.max_retries, "class": klass}
                notify(Notice("gave_up", name, f"gave up after {why}", gave_up))
            continue
        wait = policy.backoff_s * 2 ** max(0, retries - 1)
        if time.time() - (last.ended_at or 0) < wait:
            continue
        why = backend_for(spec_of(run)).files.untrusted(run.run_dir)
        if why is not None:  # others could have changed what the job would load
            if _once(store, name, f"untrusted:{last.id}", why):
                done.append(f"{name}: not resumed: {why}")
            continue
        res = resume(store, name, refresh=False)
        log_action(
            store,
            name,
            "resume",
            f"after {klass}: job {res.job_id}, excluding {','.join(res.excluded) or 'none'}",
        )
        done.append(f"{name}: resumed after {klass} as job {res.job_id}")
        resumed = {"after": klass, "job_id": res.job_id, "excluded_nodes": res.excluded}
        text = f"resumed after {klass} as job {res.job_id}" + (
            f", excluding {','.join(res.excluded)}" if res.excluded else ""
        )
        notify(Notice("resume", name, text, resumed))
    return done


def _has_room(run: Run, last: Attempt) -> bool:
    """A STORAGE ending: does the checkpoint filesystem now have the space it needed?"""
    files = backend_for(spec_of(run)).files
    return bool(room_for(run.run_dir, last.evidence.get("needed_bytes"), files))


def _damaged(run: Run) -> bool:
    try:
        spec_of(run)
    except DamagedRow:
        return True
    return run.damage is not None


def _advance_sweeps(store: Store, owner: str, policy: WatchPolicy) -> list[str]:
    """Submit waiting sweep points as in-flight ones end (each sweep's max_parallel)."""
    from olmoctl.core import sweep

    out = []
    for name in store.waiting_sweeps():
        if not take_lease(store, f"sweep:{name}", owner, policy.lease_s):
            continue
        progress = sweep.advance(store, name, refresh_first=False)
        for name, job in progress.submitted:
            log_action(store, name, "sweep-submit", f"job {job}")
            out.append(f"{name}: sweep point submitted as job {job}")
    return out


def _once(store: Store, run: str, key: str, detail: str) -> bool:
    """Log an action keyed to one attempt only once (so a report is not repeated)."""
    if store.has_action(run, key):
        return False
    log_action(store, run, key, detail)
    return True


def _steer(store: Store, run: Run, last: Attempt, done: list[str], notify: Notify) -> None:
    spec = spec_of(run)
    bad = excluded(store, spec.cluster.name, spec.cluster.node_failure_threshold)
    if last.restart_index > 0 and last.state == AttemptState.PENDING and bad:
        key = f"steered:{last.id}"
        seen = store.has_action(run.name, key)
        if not seen and backend_for(spec).exclude_pending(last.job_id, bad):
            log_action(store, run.name, key, f"excluded {','.join(bad)}")
            done.append(f"{run.name}: requeued job {last.job_id} kept off {','.join(bad)}")
            text = f"requeued job {last.job_id} kept off {','.join(bad)}"
            notify(Notice("resume", run.name, text, {"job_id": last.job_id, "excluded_nodes": bad}))


def all_settled(store: Store, runs: list[str] | None, max_retries: int) -> bool:
    """Every watched run finished, or waiting for a human (code error, OOM, gave up)."""
    rows = store.runs() if runs is None else [find_run(store, r) for r in runs]
    for run in rows:
        last = store.last_attempt(run.name)
        if last is None and run.state == WAITING:
            return False  # a sweep point still to submit
        if last is None or last.klass == cl.COMPLETED or run.state == AttemptState.CANCELLED:
            continue
        if last.klass in (cl.CODE_ERROR, cl.OOM, cl.UNKNOWN):
            continue
        if last.klass == cl.STORAGE and not _has_room(run, last):
            continue  # waits for a human to free space (or resume)
        retry = last.klass in cl.INFRA or last.klass == cl.STORAGE
        if retry and _retries(store, run.name) > max_retries:
            continue
        return False
    return True
