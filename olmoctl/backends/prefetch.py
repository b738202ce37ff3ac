"""A prefetch: what `status` will read from one cluster, declared before it reads any of it,
so a backend that pays per round trip (ssh) can fetch it all in one request.

Every read is named by a `Call`: an ordinary backend or run-file call (op and arguments),
built with the same constructor (`read_tail`, `glob`, ...) as the later call it stands for,
so a prefetched answer is found by construction. The reads that depend on the scheduler's
answer (the logs of an attempt that just ended, squeue for a job that may have been
requeued or that sacct still calls live) are declared as data, rules applied to the sacct
of the same request (controller_asks, incarnations: the same functions status uses).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    """One backend or run-file call: `op` is the method's name, `args` its arguments."""

    op: str
    args: dict[str, Any]

    def key(self) -> str:
        return json.dumps([self.op, self.args], sort_keys=True)

    def to_wire(self) -> dict[str, Any]:
        return {"op": self.op, **self.args}


def controller_asks(
    job_ids: list[str],
    result: Any,
    maybe_requeued: frozenset[str],
    live_states: frozenset[str],
) -> list[str]:
    """The queried jobs that `status` asks the controller about (one queued() call) after
    the query `result` (a QueryResult): those whose record may mean a requeue, and, when the
    answer came from accounting, those it still calls live or does not list yet. sacct lags
    the controller: a job that has just ended may read RUNNING there, or be missing, for
    minutes; squeue --states=all has its end state at once (for MinJobAge after it).
    One rule for status (core/track/status.py) and the login node's prefetch (ssh_serve.py)."""
    accounting = result.source == "sacct"
    out = []
    for j in job_ids:
        info = result.jobs.get(j)
        if info is None:
            if accounting:
                out.append(j)
        elif info.state in maybe_requeued or (accounting and info.state in live_states):
            out.append(j)
    return out


# What an earlier record in state RESIZING means for an olmoctl job: a node was lost and the
# job kept the rest of its allocation (--no-kill, the batch script's in-allocation restart);
# the next record is the job on the survivors.
RESIZED_REASON = "node lost; the job kept its allocation and went on without it"


def _resized(rec: Any) -> Any:
    if rec.state != "RESIZING":
        return rec
    return dataclasses.replace(rec, state="NODE_FAIL", reason=rec.reason or RESIZED_REASON)


def incarnations(
    history: list[Any],
    queued: Any,
    maybe_requeued: frozenset[str],
    live_states: frozenset[str],
) -> list[Any]:
    """A job's records, one per incarnation (JobInfo, oldest first), from sacct's `history`
    and the controller's record `queued` (None: not asked, or no longer known):
    - sacct's last record may mean a requeue: the controller's is the next incarnation;
    - sacct still calls it live or has no record, the controller says it ended: the
      controller's state (and reason) on what sacct knows of the same incarnation. squeue's
      format has no exit code (classify does without) nor end time: seen ended by now, so
      now (the attempt is final once classified; status looks every few seconds).
    - a record in state RESIZING with a later one: the incarnation that lost a node (NODE_FAIL).
    One rule for status (core/attempts.sync_job) and the login node's prefetch."""
    records = [_resized(r) if i < len(history) - 1 else r for i, r in enumerate(history)]
    if queued is None:
        return records
    if records and records[-1].state in maybe_requeued:
        return [*records, queued]  # requeued, waiting to start again: a new incarnation
    sacct_live = not records or records[-1].state in live_states
    if sacct_live and queued.state not in live_states:
        base = records[-1] if records else queued
        merged = dataclasses.replace(
            base,
            state=queued.state,
            node_list=queued.node_list or base.node_list,
            reason=queued.reason or base.reason,
            end=base.end or queued.end or time.time(),
        )
        return [*records[:-1], merged]
    return records


# The calls a prefetch may name; the SSH backend builds its own calls with these too.
def query(job_ids: list[str]) -> Call:
    return Call("query", {"job_ids": [str(j) for j in job_ids]})


def queued(job_ids: list[str]) -> Call:
    return Call("queued", {"job_ids": [str(j) for j in job_ids]})


def node_states(nodes: str) -> Call:
    return Call("node_states", {"nodes": str(nodes)})


def read_tail(path: Any, nbytes: int | None) -> Call:
    return Call("read_tail", {"path": str(path), "nbytes": nbytes})


def glob(folder: Any, pattern: str) -> Call:
    return Call("glob", {"folder": str(folder), "pattern": str(pattern)})


def checkpoints(run_dir: Any) -> Call:
    return Call("checkpoints", {"run_dir": str(run_dir)})


def free_space(path: Any) -> Call:
    return Call("free_space", {"path": str(path)})


@dataclass(frozen=True)
class AttemptLogs:
    """The logs that classifying one attempt reads, wanted once its job has ended: the tail
    of its batch log, the list of its rank logs and, unless the batch log suffices for how
    it ended, the tail of each rank log (read_tail(path, nbytes)). A job not queried in
    this request ended earlier: its batch log and rank list come, no rank tails."""

    job_id: str
    batch: Call  # read_tail of the batch log
    ranks: Call  # glob of the rank logs
    nbytes: int  # of each rank log's tail


@dataclass(frozen=True)
class Prefetch:
    """What one `status` reads from one cluster, in the order it reads it."""

    job_ids: list[str]  # one query() (sacct) of these
    maybe_requeued: frozenset[str]  # then queued() of the jobs controller_asks() names
    live_states: frozenset[str]  # a record in none of these has ended
    batch_log_suffices: frozenset[str]  # ended so: classified without the rank logs
    node_states_after: frozenset[str]  # ended so: node_states() of the job's nodes
    attempts: list[AttemptLogs] = field(default_factory=list)
    reads: list[Call] = field(default_factory=list)  # always: events tails, checkpoints

    def to_wire(self) -> dict[str, Any]:
        return {
            "job_ids": list(self.job_ids),
            "maybe_requeued": sorted(self.maybe_requeued),
            "live_states": sorted(self.live_states),
            "batch_log_suffices": sorted(self.batch_log_suffices),
            "node_states_after": sorted(self.node_states_after),
            "attempts": [
                {
                    "job_id": a.job_id,
                    "batch": a.batch.to_wire(),
                    "ranks": a.ranks.to_wire(),
                    "nbytes": a.nbytes,
                }
                for a in self.attempts
            ],
            "reads": [c.to_wire() for c in self.reads],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Prefetch:
        return cls(
            job_ids=[str(j) for j in data["job_ids"]],
            maybe_requeued=frozenset(data["maybe_requeued"]),
            live_states=frozenset(data["live_states"]),
            batch_log_suffices=frozenset(data["batch_log_suffices"]),
            node_states_after=frozenset(data["node_states_after"]),
            attempts=[
                AttemptLogs(
                    str(a["job_id"]),
                    _call(a["batch"]),
                    _call(a["ranks"]),
                    int(a["nbytes"]),
                )
                for a in data["attempts"]
            ],
            reads=[_call(c) for c in data["reads"]],
        )


def _call(wire: dict[str, Any]) -> Call:
    args = dict(wire)
    return Call(str(args.pop("op")), args)
