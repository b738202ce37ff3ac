"""Read what a job wrote to its run directory: the tail of events.jsonl (parsed into
olmoctl.schemas.events models, the job's own), checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olmoctl.backends.files import LOCAL, RunFiles
from olmoctl.schemas.contract import EVENTS_FILE
from olmoctl.schemas.events import (
    CheckpointSaved,
    Eval,
    Event,
    EventKind,
    Exiting,
    Started,
    Step,
    Straggler,
    parse_event,
)

TAIL_BYTES = 256 * 1024


def events_path(run_dir: str | Path) -> str:
    return str(Path(run_dir) / EVENTS_FILE)


def read_events(
    run_dir: str | Path, tail_bytes: int | None = TAIL_BYTES, fs: RunFiles | None = None
) -> list[Event]:
    """Parsed events (the last `tail_bytes` of the file, or all); a torn last line is skipped.
    `fs`: where the run directory is (default: this machine)."""
    data = (fs or LOCAL).read_tail(events_path(run_dir), tail_bytes)
    lines = data.split(b"\n")
    if tail_bytes is not None and len(data) >= tail_bytes:
        lines = lines[1:]  # the first line is probably cut
    out = []
    for line in lines:
        try:
            ev = parse_event(json.loads(line))
        except (ValueError, RecursionError):  # torn, foreign, or nested past the stack
            continue
        if ev is not None:
            out.append(ev)
    return out


@dataclass
class Summary:
    step: int | None = None
    loss: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    heartbeat_ts: float | None = None
    last_checkpoint: int | None = None
    exit_reason: str | None = None
    straggler: dict[str, Any] | None = None  # the last interval's slowest rank (this attempt)
    losses: list[tuple[int, float]] = field(default_factory=list)
    eval_step: int | None = None  # the latest in-loop evaluation: its step and each set's loss
    eval_loss: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "losses"}
        out["best_loss"] = min((loss for _, loss in self.losses), default=None)
        return out


def summarize(events: list[Event]) -> Summary:
    s = Summary()
    for ev in events:
        if ev.ts is not None:
            s.heartbeat_ts = max(s.heartbeat_ts or 0.0, ev.ts)
        if isinstance(ev, Step):
            # a field the line lacks keeps the previous value; one written as null clears it
            got = ev.model_fields_set
            s.step = ev.step if "step" in got else s.step
            s.loss = ev.loss if "loss" in got else s.loss
            s.tokens_per_s = ev.tokens_per_s if "tokens_per_s" in got else s.tokens_per_s
            s.mfu = ev.mfu if "mfu" in got else s.mfu
            if ev.step is not None and ev.loss is not None:
                s.losses.append((ev.step, ev.loss))
        elif isinstance(ev, Eval) and ev.step is not None and ev.name and ev.loss is not None:
            if ev.step != s.eval_step or s.eval_loss is None:
                s.eval_step, s.eval_loss = ev.step, {}
            s.eval_loss[ev.name] = ev.loss
        elif isinstance(ev, CheckpointSaved):
            s.last_checkpoint = ev.step if "step" in ev.model_fields_set else s.last_checkpoint
        elif isinstance(ev, Exiting):
            s.exit_reason = ev.reason
        elif isinstance(ev, Straggler):
            s.straggler = straggler_of(ev)
        elif ev.event == EventKind.STARTED:
            s.exit_reason = None
            s.straggler = None
    return s


def straggler_of(ev: Straggler) -> dict[str, Any]:
    """What status shows of a straggler event."""
    keys = ("step", "node", "rank", "ratio", "seconds", "median_s")
    return {k: getattr(ev, k) for k in keys}


def started(events: list[Event]) -> list[Started]:
    """The `started` events (one per job start), oldest first."""
    return [e for e in events if isinstance(e, Started)]


def complete_checkpoints(
    run_dir: str | Path, fs: RunFiles | None = None
) -> list[tuple[int, Path, bool]]:
    """(step, path, complete) for every step folder under checkpoints/, oldest first."""
    return [(step, Path(p), done) for step, p, done in (fs or LOCAL).checkpoints(str(run_dir))]
