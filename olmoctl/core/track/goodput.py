"""Goodput of a run: seconds of new training progress over wall time since first
submission, and where the rest went (queueing, failed attempts, recomputed steps)."""

from __future__ import annotations

from typing import Any

from olmoctl.schemas.events import CheckpointSaved, Event, Started, Step
from olmoctl.store import Attempt


def goodput(events: list[Event], attempts: list[Attempt], now: float) -> dict[str, Any]:
    """Each step's duration is the time since the previous step (or start) in the same
    incarnation; a step done twice (after a restart) counts once, its last time, as
    progress: the earlier times are recomputation."""
    if not attempts:
        return {}
    first_submit = min(a.submitted_at or now for a in attempts)
    ends = [a.ended_at for a in attempts if a.ended_at]
    live = any(a.ended_at is None for a in attempts)
    wall = (now if live or not ends else max(ends)) - first_submit
    durations: dict[int, list[float]] = {}
    prev: float | None = None
    for e in events:
        if isinstance(e, Started):
            prev = e.ts
        elif isinstance(e, CheckpointSaved):
            prev = e.ts  # a save is overhead, not a step
        elif isinstance(e, Step) and e.step is not None and e.ts is not None and prev is not None:
            durations.setdefault(e.step, []).append(max(0.0, e.ts - prev))
            prev = e.ts
    progress = sum(d[-1] for d in durations.values())
    recomputed = sum(sum(d[:-1]) for d in durations.values())
    queued = sum(
        max(0.0, (a.started_at or now) - (a.submitted_at or now))
        for a in attempts
        if a.restart_index == 0 or a.started_at
    )
    other = max(0.0, wall - progress - recomputed - queued)
    return {
        "wall_s": round(wall, 1),
        "progress_s": round(progress, 1),
        "goodput": round(progress / wall, 4) if wall > 0 else None,
        "queued_s": round(queued, 1),
        "recomputed_s": round(recomputed, 1),
        "recomputed_steps": sum(len(d) - 1 for d in durations.values()),
        "other_s": round(other, 1),  # startup, saves, failed-attempt tails, backoff
    }
