"""Read what a job wrote to its run directory: the tail of events.jsonl, checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olmoctl.backends.files import LOCAL, RunFiles

TAIL_BYTES = 256 * 1024


def events_path(run_dir: str | Path) -> str:
    return str(Path(run_dir) / "events.jsonl")


def read_events(
    run_dir: str | Path, tail_bytes: int | None = TAIL_BYTES, fs: RunFiles | None = None
) -> list[dict[str, Any]]:
    """Parsed events (the last `tail_bytes` of the file, or all); a torn last line is skipped.
    `fs`: where the run directory is (default: this machine)."""
    data = (fs or LOCAL).read_tail(events_path(run_dir), tail_bytes)
    lines = data.split(b"\n")
    if tail_bytes is not None and len(data) >= tail_bytes:
        lines = lines[1:]  # the first line is probably cut
    out = []
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
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
    losses: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "losses"}
        out["best_loss"] = min((loss for _, loss in self.losses), default=None)
        return out


def summarize(events: list[dict[str, Any]]) -> Summary:
    s = Summary()
    for ev in events:
        kind, ts = ev.get("event"), ev.get("ts")
        if isinstance(ts, (int, float)):
            s.heartbeat_ts = max(s.heartbeat_ts or 0.0, float(ts))
        if kind == "step":
            s.step = ev.get("step", s.step)
            s.loss = ev.get("loss", s.loss)
            s.tokens_per_s = ev.get("tokens_per_s", s.tokens_per_s)
            s.mfu = ev.get("mfu", s.mfu)
            if isinstance(ev.get("step"), int) and isinstance(ev.get("loss"), (int, float)):
                s.losses.append((ev["step"], float(ev["loss"])))
        elif kind == "checkpoint_saved":
            s.last_checkpoint = ev.get("step", s.last_checkpoint)
        elif kind == "exiting":
            s.exit_reason = ev.get("reason")
        elif kind == "started":
            s.exit_reason = None
    return s


def complete_checkpoints(
    run_dir: str | Path, fs: RunFiles | None = None
) -> list[tuple[int, Path, bool]]:
    """(step, path, complete) for every step folder under checkpoints/, oldest first."""
    return [(step, Path(p), done) for step, p, done in (fs or LOCAL).checkpoints(str(run_dir))]
