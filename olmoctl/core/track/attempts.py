"""Keep the store's attempts in step with Slurm: one attempt per incarnation of a job
(a Slurm requeue starts a new one with the same job id), and classify each ending once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from olmoctl.backends.base import CLOCK_SLACK_S, KILLED_REASON, Backend, JobInfo
from olmoctl.backends.prefetch import incarnations
from olmoctl.core.track import burnin
from olmoctl.core.track import classify as cl
from olmoctl.core.track import events as ev
from olmoctl.fileread import Refused
from olmoctl.schemas.events import CheckpointSaved, Event, EventKind, Exiting, Started, Step
from olmoctl.schemas.shellsafe import is_host
from olmoctl.store import LIVE_STATES, Attempt, AttemptState, Run, Tx

# A job whose latest record says one of these may have been requeued by Slurm (then
# squeue still lists it): ask the controller before calling the attempt over.
MAYBE_REQUEUED = frozenset({"NODE_FAIL", "REQUEUED", "PREEMPTED", "REQUEUE_HOLD"})
# An attempt that ended so: classify_ended asks the scheduler about its nodes.
ASK_NODES_AFTER = frozenset({"NODE_FAIL"})
# The live states as words (a JobInfo's state; the prefetch's wire form).
LIVE_WORDS = frozenset(str(s) for s in LIVE_STATES)


def sync_job(
    tx: Tx,
    attempts: list[Attempt],
    history: list[JobInfo],
    queued: JobInfo | None,
) -> None:
    """attempts: this job's attempts (oldest first). history: sacct's records for the job,
    one per incarnation. queued: squeue's record if the controller still has the job."""
    base = attempts[0]
    by_index = {a.restart_index: a for a in attempts}
    records = incarnations(history, queued, MAYBE_REQUEUED, LIVE_WORDS)
    for i, info in enumerate(records):
        row = by_index.get(i)
        if row is None:
            tx.add_attempt(
                base.run_name,
                job_id=base.job_id,
                cluster=base.cluster,
                nodes=base.nodes,
                state=info.state,
                submitted_at=info.start or time.time(),
                script=base.script,
                restart_index=i,
            )
            continue
        if row.klass is not None:
            continue  # classified: final
        tx.update_attempt(row.id, **_fields(row, info))


def _fields(row: Attempt, info: JobInfo) -> dict[str, Any]:
    fields: dict[str, Any] = {"state": info.state}
    live = AttemptState(info.state).is_live
    if info.node_list:
        fields["node_list"] = info.node_list
    if info.start:
        fields["started_at"] = info.start
    if info.end and not live:
        fields["ended_at"] = info.end
    if info.exit_code:
        fields["exit_code"] = info.exit_code
    if live:
        fields["reason"] = info.reason  # e.g. PENDING (Resources): current, so overwrite
    elif info.reason and row.reason is None:
        fields["reason"] = info.reason
    return fields


def segment(events: list[Event], job_id: str | None, index: int) -> list[Event]:
    """The events one incarnation wrote: from its `started` event to the next `started`."""
    out: list[Event] = []
    inside = False
    for e in events:
        if e.event == EventKind.STARTED:
            inside = (
                isinstance(e, Started)
                and str(e.job_id) == str(job_id)
                and int(e.attempt or 0) == index
            )
        if inside:
            out.append(e)
    return out


def unstarted_exiting(events: list[Event], since: float | None) -> Exiting | None:
    """The `exiting` event of a job that stopped before its `started` event: the last one
    outside every job's started..exiting span, written after `since` (the attempt's
    submission), so an earlier attempt's is never taken for this one's."""
    found = None
    open_span = False
    for e in events:
        if isinstance(e, Started):
            open_span = True
        elif isinstance(e, Exiting):
            late = since is None or (e.ts is not None and e.ts >= since - CLOCK_SLACK_S)
            if not open_span and late:
                found = e
            open_span = False
    return found


def last_progress(seg: list[Event]) -> float | None:
    progress = (Started, Step, CheckpointSaved)
    ts = [e.ts for e in seg if isinstance(e, progress) and e.ts is not None]
    return max(ts) if ts else None


def classify_ended(
    tx: Tx,
    run: Run,
    attempt: Attempt,
    backend: Backend,
    *,
    rank_files: dict[int, Path],
    batch_log: Path | None,
    hang: bool = False,
) -> cl.Verdict:
    """Classify an attempt that ended, record the verdict and blame nodes (node health).
    Files are read where the backend's run directories are (backend.files); one that is
    not a regular file is not read, and said in the evidence ("unread")."""
    fs = backend.files
    unread: list[str] = []

    def tail(path: Path) -> str:
        try:
            return fs.read_tail(str(path), cl.TAIL_BYTES).decode(errors="replace")
        except Refused as e:
            unread.append(str(e))
            return ""

    try:
        events = ev.read_events(run.run_dir, fs=fs)
    except Refused as e:
        unread.append(str(e))
        events = []
    seg = segment(events, attempt.job_id, attempt.restart_index)
    exiting = next((e for e in reversed(seg) if isinstance(e, Exiting)), None)
    if not seg:  # ended before training started (bad input, a missing data file)
        exiting = unstarted_exiting(events, attempt.submitted_at)
    nodes = attempt.node_list or ""
    down: dict[str, str] = {}
    if attempt.state in ASK_NODES_AFTER and nodes:
        for node, (state, reason) in backend.node_states(nodes).items():
            if any(w in state for w in ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING")):
                down[node] = f"{state} {reason}".strip()
    verdict = cl.classify(
        slurm_state=attempt.state,
        exit_code=attempt.exit_code,
        node_list=[nodes] if nodes else [],
        batch_log=batch_log,
        rank_logs=rank_files,
        exiting=exiting,
        down_nodes=down,
        cancelled_by_user=attempt.reason == "cancelled by user",
        killed=attempt.reason == KILLED_REASON,
        hang=hang,
        tail=tail,
    )
    if unread:
        verdict.evidence["unread"] = unread
    steps = [e.step for e in seg if isinstance(e, Step) and e.step is not None]
    started = next((e for e in seg if isinstance(e, Started)), None)
    burned = burnin.verdict_of(events, attempt.job_id, attempt.restart_index)
    if burned is not None and started is None and (end := burnin.ending(burned)) is not None:
        ev_burnin = {**verdict.evidence, "burnin": burnin.summary(burned)}
        verdict = cl.Verdict(end[0], end[1], evidence=ev_burnin)  # no training: the burn-in
    if started is not None:
        verdict.evidence["checkpoint_loaded"] = started.checkpoint_loaded
    tx.update_attempt(
        attempt.id,
        klass=verdict.klass,
        reason=verdict.reason,
        evidence={**attempt.evidence, **verdict.evidence},
        first_step=min(steps) if steps else None,
        last_step=max(steps) if steps else None,
    )
    if verdict.klass == cl.NODE_FAIL:
        # Only real host names are kept: they go into later scripts' --exclude=.
        for node in filter(is_host, verdict.nodes):
            tx.node_failure(attempt.cluster, node, verdict.reason)
    return verdict
