"""status: ONE scheduler query for every unfinished attempt, then the store and the tail of
each run's events.jsonl. Also recovers attempts left SUBMITTING by a crashed launch."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from olmoctl.backends.base import Backend
from olmoctl.backends.files import RunFiles
from olmoctl.backends.prefetch import controller_asks
from olmoctl.backends.registry import backend_for, backend_key
from olmoctl.core.track import attempts as att
from olmoctl.core.track import burnin
from olmoctl.core.track import events as ev
from olmoctl.errors import OlmoctlError, shown
from olmoctl.fileread import Refused
from olmoctl.schemas.contract import is_permanent_step
from olmoctl.schemas.events import Burnin
from olmoctl.store import Attempt, AttemptState, DamagedRow, Run, Store

# A launch that crashed between recording and submitting: give it this long to finish.
SUBMIT_GRACE_S = 120


@dataclass
class Refresh:
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    queries: int = 0


def _scheduler_of(store: Store, run_name: str) -> str:
    """The backend a run's jobs answer to: its scheduler, or "ssh:{...}" for a remote one."""
    row = store.get_run(run_name)
    if row is None:
        return "slurm"
    return backend_key(row.spec_data["cluster"])


def _backend(run: Run) -> Backend:
    return backend_for(backend_key(run.spec_data["cluster"]))


def _files(run: Run) -> RunFiles:
    """Where the run's directory is: this machine, or the login node of a remote cluster."""
    return _backend(run).files


def _run(store: Store, name: str) -> Run:
    run = store.get_run(name)
    assert run is not None  # attempts belong to a run (ON DELETE CASCADE)
    return run


def refresh(store: Store, *, run_names: list[str] | None = None) -> Refresh:
    """Bring every unfinished attempt up to date: ONE sacct call per scheduler for all of
    them (plus one squeue call for those sacct still calls live, does not list yet, or that
    may have been requeued: the controller knows an ending before accounting does), then
    classify attempts that ended and flag runs that stopped making progress."""
    out = Refresh()
    damaged: set[str] = set()  # runs whose row cannot be used: noted, left as they are

    def usable(name: str, use: Any) -> bool:
        try:
            use()
            return True
        except DamagedRow as e:
            if run_names is not None:
                raise  # asked about this run: say why we cannot answer
            if name not in damaged:
                damaged.add(name)
                out.notes.append(str(e))
            return False

    submitting = store.submitting_attempts()
    _recover_submitting(
        store,
        [a for a in submitting if usable(a.run_name, lambda n=a.run_name: _files_of_run(store, n))],
    )
    live = [a for a in store.live_attempts() if run_names is None or a.run_name in run_names]
    by_sched: dict[str, list[Attempt]] = defaultdict(list)
    keys: dict[str, str] = {}  # run -> backend key, one store read per run
    for a in live:
        name = a.run_name
        if a.job_id and name not in damaged:
            if name not in keys and not usable(
                name, lambda n=name: keys.__setitem__(n, _scheduler_of(store, n))
            ):
                continue
            by_sched[keys[name]].append(a)
    unreachable: set[str] = set()
    for sched, attempts in by_sched.items():
        try:
            _refresh_group(store, sched, attempts, out)
        except OlmoctlError as e:
            if run_names is not None:
                raise  # asked about these runs: say why we cannot answer
            # One unreachable cluster must not hide every other cluster's runs.
            where = attempts[0].cluster
            out.notes.append(f"cluster {shown(where)}: {e}; its runs show their last known state")
            unreachable |= {a.run_name for a in attempts}
    # Only runs that were unfinished can have changed: a store of 1,000 finished runs costs
    # no more than one of 10 (their summaries were written when they ended).
    touched = {a.run_name for a in live} | {a.run_name for a in submitting}
    names = sorted((touched | set(run_names or [])) - unreachable - damaged)
    names = [n for n in names if usable(n, lambda n=n: _files_of_run(store, n))]
    _update_runs(store, names, out.notes)
    if run_names is not None:  # asked about these runs: say whose directory is not theirs alone
        out.notes += _untrusted(store, names)
    out.notes = list(dict.fromkeys(out.notes))  # a file refused twice (events, classify): once
    return out


def _untrusted(store: Store, names: list[str]) -> list[str]:
    """A note per run whose directory others could write (backends.files.untrusted): it is
    reported, and `resume`/`watch` do not resume from it."""
    notes = []
    for name in names:
        run = _run(store, name)
        why = _files(run).untrusted(run.run_dir)
        if why is not None:
            notes.append(f"run {shown(name)}: {why}; resume and watch will not use it")
    return notes


def _files_of_run(store: Store, name: str) -> None:
    """Raises DamagedRow if the run's recorded spec cannot say where its files are."""
    run = store.get_run(name)
    if run is not None:
        _files(run)


def _refresh_group(store: Store, sched: str, attempts: list[Attempt], out: Refresh) -> None:
    """One scheduler's live attempts: one query, sync incarnations, classify endings."""
    backend = backend_for(sched)
    from olmoctl.core.track.status_reads import status_reads

    dirs = {n: _run(store, n).run_dir for n in sorted({a.run_name for a in attempts})}
    job_dirs = {a.job_id: dirs[a.run_name] for a in attempts if a.job_id}
    job_ids = sorted(job_dirs)
    to_classify = {  # every attempt that may be classified below: a remote backend reads its logs
        b.job_id: dirs[name]
        for name in dirs
        for b in store.attempts(name)
        if b.job_id and b.klass is None
    }
    # A remote backend reads all of what follows in one round trip; elsewhere a no-op.
    backend.prefetch(status_reads(job_ids, to_classify, sorted(set(dirs.values()))))
    result = backend.query({j: job_dirs[j] for j in job_ids})
    out.queries += 1
    out.sources.append(result.source)
    if result.note:
        out.notes.append(result.note)
    # The controller's word on jobs that may have been requeued, or that accounting may not
    # have seen end yet (sacct lags squeue): a job that already ended is seen ended now.
    maybe = controller_asks(job_ids, result, att.MAYBE_REQUEUED, att.LIVE_WORDS)
    queued = backend.queued(maybe) if maybe else {}
    with store.tx() as tx:
        for job_id in job_ids:
            run_name = next(a.run_name for a in attempts if a.job_id == job_id)
            rows = tx.job_attempts(run_name, job_id)
            history = result.history.get(job_id) or []
            if history or job_id in queued:
                att.sync_job(tx, rows, history, queued.get(job_id))
    _classify_ended(store, backend, {a.run_name for a in attempts}, out.notes)


def _classify_ended(store: Store, backend: Backend, run_names: set[str], notes: list[str]) -> None:
    from olmoctl.core.track import logs

    for name in sorted(run_names):
        run = _run(store, name)
        attempts = store.attempts(name)
        for a in attempts:
            # A job's earlier incarnation has ended even if its record still says REQUEUED.
            superseded = any(
                b.job_id == a.job_id and b.restart_index > a.restart_index for b in attempts
            )
            if a.klass is not None or (a.is_live and not superseded):
                continue
            with store.tx() as tx:
                verdict = att.classify_ended(
                    tx,
                    run,
                    a,
                    backend,
                    rank_files=logs.rank_files(backend, run, a),
                    batch_log=logs.batch_file(backend, run, a),
                )
            notes += [f"run {shown(name)}: {why}" for why in verdict.evidence.get("unread", [])]


def _recover_submitting(store: Store, attempts: list[Attempt]) -> None:
    now = time.time()
    for a in attempts:
        if now - (a.submitted_at or 0) < SUBMIT_GRACE_S:
            continue
        run = store.get_run(a.run_name)
        job_id = _backend(run).recover_job_id(run.run_dir) if run else None
        with store.tx() as tx:
            if job_id:
                tx.update_attempt(a.id, job_id=job_id, state=AttemptState.PENDING)
            else:
                tx.update_attempt(
                    a.id,
                    state=AttemptState.SUBMIT_FAILED,
                    reason="olmoctl stopped before the job was submitted",
                )


def _update_runs(store: Store, run_names: list[str], notes: list[str]) -> None:
    """Fold each run's events and checkpoints into the store: files first (no lock held),
    then one transaction for all runs. An events file that is not a regular file is not
    read: a note for that run, whose row keeps what it had."""
    updates = []
    for name in run_names:
        run = store.get_run(name)
        if run is None:
            continue
        fs = _files(run)
        try:
            events = ev.read_events(run.run_dir, fs=fs)
        except Refused as e:
            notes.append(f"run {shown(name)}: {e}")
            events = []
        summary = ev.summarize(events)
        ckpts = ev.complete_checkpoints(run.run_dir, fs)
        updates.append((run, store.last_attempt(name), summary, ckpts, events))
    if not updates:
        return
    with store.tx() as tx:
        for run, last, summary, ckpts, events in updates:
            burnin.record(tx, run, events)  # what burn-ins measured: node health
            old = run.summary
            new = {**old, **{k: v for k, v in summary.to_dict().items() if v is not None}}
            # The tail holds recent steps only: the best loss is the best of every look.
            bests = [b for b in (old.get("best_loss"), new.get("best_loss")) if b is not None]
            if bests:
                new["best_loss"] = min(bests)
            # An ended attempt names its class (NODE_FAIL, CODE_ERROR...); a live one its state.
            state = (last.klass or last.state) if last is not None else None
            if state is not None and state != run.state:
                tx.set_run_state(run.name, state)
            if new != old:
                tx.update_summary(run.name, new)
            if last is not None and summary.step is not None and last.last_step != summary.step:
                tx.update_attempt(last.id, last_step=summary.step)
            for step, path, complete in ckpts:
                tx.record_checkpoint(run.name, step, str(path), complete)
            # Rows of folders retention has deleted since: shown and used no more. Retention
            # always keeps one, so an empty listing (a remote that did not answer) marks nothing.
            if ckpts:
                tx.mark_checkpoints_deleted(run.name, [step for step, _, _ in ckpts])


def overview(store: Store, **filters: Any) -> list[dict[str, Any]]:
    """One row per run, as printed by `status` (and its --json)."""
    now = time.time()
    # Every run's last attempt and attempt count in one query (not one per run).
    lasts = store.last_attempts()
    return [_row(run, *lasts.get(run.name, (None, 0)), now) for run in store.runs(**filters)]


def _row(run: Run, last: Attempt | None, n_attempts: int, now: float) -> dict[str, Any]:
    """A run's line in `status`; `last` is its last attempt, of `n_attempts`."""
    s = run.summary
    hb = s.get("heartbeat_ts")
    return {
        "name": run.name,
        "recipe": run.recipe,
        "cluster": run.cluster,
        "state": run.state,
        "attempts": n_attempts,
        "job_id": last.job_id if last else None,
        "nodes": run.nodes,
        "node_list": last.node_list if last else None,
        "step": s.get("step"),
        "total_steps": run.total_steps,
        "loss": s.get("loss"),
        "eval_step": s.get("eval_step"),
        "eval_loss": s.get("eval_loss"),  # {eval set: loss} at eval_step
        "tokens_per_s": s.get("tokens_per_s"),
        "last_checkpoint": s.get("last_checkpoint"),
        "heartbeat_age_s": round(now - hb, 1) if hb else None,
        "created_at": run.created_at,
        "sweep": run.sweep,
        **({"damaged": run.damage} if run.damage else {}),
    }


def detail(store: Store, name: str) -> dict[str, Any]:
    from olmoctl.core.track.runs import find_run

    run = find_run(store, name)  # DamagedRow (one line) for a damaged row
    from olmoctl.core.track.goodput import goodput
    from olmoctl.core.track.ledger import ledger

    try:
        events = ev.read_events(run.run_dir, tail_bytes=None, fs=_files(run))
    except Refused:
        events = []  # refresh(), which `status RUN` runs first, has said why
    every = _permanent_every(run)
    summary = ev.summarize(events)
    attempts = store.attempts(name)
    last = attempts[-1] if attempts else None
    now = time.time()
    return {
        **_row(run, last, len(attempts), now),
        "run_dir": run.run_dir,
        "attempt_list": [{**a.fields(), "evidence": a.evidence} for a in attempts],
        "checkpoints": [
            {
                "step": c.step,
                "path": c.path,
                "complete": c.complete,
                "permanent": is_permanent_step(c.step, every),
            }
            for c in store.checkpoints(name)
        ],
        "losses": summary.losses,
        "straggler": summary.straggler,
        "goodput": goodput(events, attempts, now),
        "ledger": ledger(events, attempts, now, _hang_timeout(run)),
        "nodes_excluded": run.spec_data.get("exclude_nodes", []),
        "spare_nodes": run.spec_data.get("spare_nodes", 0),
        "burnin": [burnin.summary(b) for b in events if isinstance(b, Burnin)],
    }


def _hang_timeout(run: Run) -> float | None:
    """The profile's hang_timeout_s (what watch cancels at), None in an older spec."""
    value = run.spec_data["cluster"].get("hang_timeout_s")
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None


def _permanent_every(run: Run) -> int:
    """The recipe's checkpoint.permanent_interval_steps (0: none, or an older spec)."""
    recipe = run.spec_data.get("recipe")
    ckpt = recipe.get("checkpoint") if isinstance(recipe, dict) else None
    every = ckpt.get("permanent_interval_steps", 0) if isinstance(ckpt, dict) else 0
    return every if isinstance(every, int) else 0
