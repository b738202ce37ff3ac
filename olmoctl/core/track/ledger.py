"""The goodput ledger: every second of a run's wall time, from its first submission to now
(or to its last attempt's end), in exactly one category.

Categories (CATEGORIES, in display order):
  queued      an attempt waiting in Slurm's queue: submitted (or, for a requeued job, its
              previous incarnation's end) to started
  starting    an allocation's batch script, container, imports, rendezvous and checkpoint
              load: start to the `started` event, burn-in left out; a restart inside the
              same allocation starts at its burn-in's end (what came before is the restart)
  burnin      the burn-in's own seconds (`burnin` event: ts - seconds .. ts)
  productive  training steps done for the first time: from one progress mark to the next
              (`started` at its start_step, `step`, a `heartbeat` whose step advanced, a
              save's start), evaluation included
  checkpoint  training stalled by a save: a sync save's whole time, an async save's stall
              (its stall_s, at the save's start)
  redone      training steps that an earlier attempt had already done (resumed from an
              older checkpoint); a mark interval that spans both is split pro rata
  restart     the cost of an ending that was not the run's own: a failed, preempted or
              timed-out attempt from its last progress mark to its end, after a burn-in
              that requeued or failed its job, the gap before the next attempt (watch's
              backoff, a resume by hand), and in-allocation waits (detection, backoff);
              also any second no other category claims
  idle        the allocation held without training: an attempt that hung (class HANG, or
              live with no progress for hang_timeout_s), and a completed attempt's wind-down
              after its last step (final save excepted)

Built as a timeline sweep: each piece of evidence is an interval with a category; at every
instant the highest-priority category covering it (PRIORITY) wins, and uncovered instants
are `restart`. So the categories sum to the wall time by construction.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from olmoctl.core.track.classify import COMPLETED, HANG
from olmoctl.schemas.events import Burnin, CheckpointSaved, Event, Heartbeat, Started, Step
from olmoctl.store import Attempt

CATEGORIES = (
    "queued", "starting", "burnin", "productive", "checkpoint", "redone", "restart", "idle"
)  # fmt: skip
# How people read them (status RUN, the card).
LABELS = {
    "queued": "queued", "starting": "starting", "burnin": "burn-in", "productive": "productive",
    "checkpoint": "checkpoint stall", "redone": "redone", "restart": "restart", "idle": "hung/idle",
}  # fmt: skip
# Highest first: direct measurements (a save's stall, the burn-in's seconds) beat spans
# inferred from marks, which beat Slurm's queue span and the tails of attempts.
PRIORITY = ("checkpoint", "burnin", "starting", "redone", "productive", "queued", "idle")
DEFAULT = "restart"
# How far the job's clock may be off Slurm's when matching events to an attempt.
SLACK_S = 2.0


@dataclass(frozen=True)
class _Span:
    start: float
    end: float
    what: str


def ledger(
    events: list[Event],
    attempts: list[Attempt],
    now: float,
    hang_timeout_s: float | None = None,
) -> dict[str, object]:
    """{since, until, wall_s, seconds: {category: s}} (empty without attempts); seconds in
    whole ms, summing to wall_s."""
    known = sorted(
        (a for a in attempts if a.submitted_at is not None or a.started_at is not None),
        key=lambda a: (_first(a.submitted_at, a.started_at, 0.0), a.attempt_no),
    )
    if not known:
        return {}
    # A run dir is anyone's text: JSON's NaN and Infinity parse, and would poison the sums.
    events = [e for e in events if e.ts is not None and math.isfinite(e.ts)]
    since = min(_first(a.submitted_at, a.started_at, now) for a in known)
    live = any(a.is_live for a in known)
    ends = [a.ended_at for a in known if a.ended_at is not None]
    until = now if live or not ends else max(ends)
    until = max(until, since)
    spans = _spans(events, known, now, hang_timeout_s)
    seconds = _sweep(spans, since, until)
    return {
        "since": since,
        "until": until,
        "wall_s": round(until - since, 3),
        "seconds": _to_ms(seconds, until - since),
    }


def _to_ms(seconds: dict[str, float], wall: float) -> dict[str, float]:
    """Rounded to whole ms so that they still sum to the wall time's ms: the largest
    remainders take the ms that rounding down left over."""
    ms = {k: max(0.0, seconds[k]) * 1000 for k in CATEGORIES}
    out = {k: int(v) for k, v in ms.items()}
    left = max(0, round(wall * 1000) - sum(out.values()))
    for k in sorted(CATEGORIES, key=lambda k: out[k] - ms[k])[:left]:
        out[k] += 1
    return {k: v / 1000 for k, v in out.items()}


def _first(*values: float | None) -> float:
    """The first value that is not None (0.0 is a time like any other)."""
    return next(v for v in values if v is not None)


def _sweep(spans: list[_Span], since: float, until: float) -> dict[str, float]:
    """Seconds per category over [since, until]: each elementary piece between two span
    edges goes to the highest-priority category open there."""
    rank = {w: i for i, w in enumerate(PRIORITY)}
    edges: list[tuple[float, int, str]] = []
    for s in spans:
        a, b = max(s.start, since), min(s.end, until)
        if b > a and s.what in rank:
            edges += [(a, 1, s.what), (b, -1, s.what)]
    edges.sort(key=lambda e: e[0])
    out = dict.fromkeys(CATEGORIES, 0.0)
    open_: dict[str, int] = dict.fromkeys(PRIORITY, 0)
    t = since
    for at, delta, what in edges:
        if at > t:
            out[_top(open_)] += at - t
            t = at
        open_[what] += delta
    out[_top(open_)] += until - t
    return out


def _top(open_: dict[str, int]) -> str:
    return next((w for w in PRIORITY if open_[w] > 0), DEFAULT)


def _segments(events: list[Event]) -> list[tuple[Started, list[Event]]]:
    """Each `started` event (with a time) and the events after it, up to the next one."""
    out: list[tuple[Started, list[Event]]] = []
    for e in events:
        if isinstance(e, Started) and e.ts is not None:
            out.append((e, []))
        elif out and e.ts is not None:
            out[-1][1].append(e)
    return out


def _match(
    segs: list[tuple[Started, list[Event]]],
    a: Attempt,
    end: float,
    taken: set[int],
    keys: set[tuple[str, int]],
) -> int | None:
    """The segment of attempt `a`: its job id and restart index, else the first free one
    that started within its run span and names no attempt (a job that wrote no ids)."""
    for i, (s, _) in enumerate(segs):
        if i not in taken and (str(s.job_id), int(s.attempt or 0)) == _key(a):
            return i
    begin = a.started_at if a.started_at is not None else a.submitted_at
    for i, (s, _) in enumerate(segs):
        free = i not in taken and (str(s.job_id), int(s.attempt or 0)) not in keys
        if free and begin is not None and begin - SLACK_S <= (s.ts or 0.0) <= end + SLACK_S:
            return i
    return None


def _key(a: Attempt) -> tuple[str, int]:
    return str(a.job_id), a.restart_index


def _marks(started: Started, seg: list[Event]) -> list[tuple[float, int]]:
    """(time, step) at which training had reached a step, advancing only."""
    raw: list[tuple[float, int]] = []
    for e in seg:
        if isinstance(e, (Step, Heartbeat)) and e.step is not None and e.ts is not None:
            raw.append((e.ts, e.step))
        elif isinstance(e, CheckpointSaved) and e.step is not None and e.ts is not None:
            raw.append((e.ts - _save_took(e), e.step))  # the step was done when the save began
    out = [(_first(started.ts, 0.0), started.start_step or 0)]
    for ts, step in sorted(raw):
        if step > out[-1][1] and ts >= out[-1][0]:
            out.append((ts, step))
    return out


def _secs(x: float | None) -> float:
    """A duration from an event: None, negative or not finite is 0."""
    return x if x is not None and math.isfinite(x) and x > 0 else 0.0


def _save_took(e: CheckpointSaved) -> float:
    return _secs(e.seconds) if e.seconds is not None else _stall(e)


def _stall(e: CheckpointSaved) -> float:
    if e.stall_s is not None:
        return _secs(e.stall_s)
    return 0.0 if e.mode == "async" else _secs(e.seconds)


def _spans(
    events: list[Event], attempts: list[Attempt], now: float, hang_timeout_s: float | None
) -> list[_Span]:
    spans = [
        _Span(e.ts - _secs(e.seconds), e.ts, "burnin")
        for e in events
        if isinstance(e, Burnin) and e.ts is not None
    ]
    burnins = {
        (str(e.job_id), int(e.attempt or 0)): e
        for e in events
        if isinstance(e, Burnin) and e.ts is not None
    }
    segs = _segments(events)
    taken: set[int] = set()
    keys = {_key(a) for a in attempts}
    high = 0  # the furthest step any attempt so far reached: below it, work is redone
    prev: Attempt | None = None
    for n, a in enumerate(attempts):
        end = a.ended_at if a.ended_at is not None else now
        if not a.is_live and a.ended_at is None:  # ended, no end recorded (e.g. REQUEUED)
            after = attempts[n + 1 : n + 2]
            nxt = _first(after[0].submitted_at, after[0].started_at, now) if after else None
            end = _first(nxt, a.started_at, a.submitted_at, now)
        i = _match(segs, a, end, taken, keys)
        if i is not None:
            taken.add(i)
        seg = segs[i] if i is not None else None
        started_at = a.started_at if a.started_at is not None or seg is None else seg[0].ts
        same_job = prev is not None and _key(prev)[0] == _key(a)[0] and prev.ended_at is not None
        queued_from = a.submitted_at
        if same_job and prev and prev.ended_at is not None:  # requeued: pending since then
            queued_from = min(_first(queued_from, prev.ended_at), prev.ended_at)
        if queued_from is not None:
            spans.append(_Span(queued_from, end if started_at is None else started_at, "queued"))
        if started_at is not None:
            boot, ready = started_at, end if seg is None else _first(seg[0].ts, end)
            b = burnins.get(_key(a))
            burnt = b.ts if b is not None and b.ts is not None else None
            # Restarted in the same allocation (no queue between): before its burn-in came
            # detection and backoff, i.e. the restart.
            if burnt is not None and same_job and prev and prev.ended_at is not None:
                boot = burnt if started_at - prev.ended_at <= SLACK_S else boot
            if burnt is not None and b is not None and b.action in ("requeue", "fail"):
                ready = min(ready, burnt)  # the burn-in ended it: what follows is the restart
            spans.append(_Span(boot, ready, "starting"))
        if seg is not None:
            high = _training(spans, a, seg, end, high, now, hang_timeout_s)
        prev = a
    return spans


def _training(
    spans: list[_Span],
    a: Attempt,
    seg: tuple[Started, list[Event]],
    end: float,
    high: int,
    now: float,
    hang_timeout_s: float | None,
) -> int:
    """Append one attempt's training, save and tail spans; returns the new high step."""
    marks = _marks(*seg)
    for (t0, s0), (t1, s1) in itertools.pairwise(marks):
        again = min(max(high - s0, 0), s1 - s0)
        cut = t0 + (t1 - t0) * again / (s1 - s0)
        spans += [_Span(t0, cut, "redone"), _Span(cut, t1, "productive")]
        high = max(high, s1)
    for e in seg[1]:
        if isinstance(e, CheckpointSaved) and e.ts is not None:
            begin = e.ts - _save_took(e)
            spans.append(_Span(begin, begin + _stall(e), "checkpoint"))
    last_t, last_step = marks[-1]
    what = _tail(a, seg[1], last_t, last_step < high, now, hang_timeout_s)
    spans.append(_Span(last_t, end, what))
    return high


def _tail(
    a: Attempt,
    seg: list[Event],
    last_mark: float,
    behind: bool,
    now: float,
    hang_timeout_s: float | None,
) -> str:
    """What an attempt's time after its last progress mark was."""
    if a.klass == HANG:
        return "idle"
    if a.is_live:
        progress = max([last_mark] + [e.ts for e in seg if isinstance(e, CheckpointSaved) and e.ts])
        if hang_timeout_s is not None and now - progress > hang_timeout_s:
            return "idle"
        return "redone" if behind else "productive"  # training, not logged yet
    if a.klass == COMPLETED or (a.klass is None and a.state == COMPLETED):
        return "idle"
    return "restart"
