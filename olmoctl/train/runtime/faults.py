"""Test-only fault injection, read once from OLMOCTL_TRAIN_FAULTS (JSON); inert when unset.

{"pause_after_step": 5, "gate": "/path"}   every rank, after optimizer step 5, writes
    /path.waiting.RANK and waits until /path exists (the test sends a signal meanwhile,
    so where the flag is seen is deterministic).
{"raise_after_step": 5}   every rank raises a RuntimeError ("deliberate fault") after
    optimizer step 5: a code error, for the failure-classification tests.
{"stall_save_step": 20, "stall_at": "before_rename" | "before_marker" | "mid_write"}
    rank 0 stops in the middle of that step's save and writes STALLED_FILE in the
    checkpoints folder (the test then SIGKILLs it). mid_write: on the checkpoint writer
    (the background thread of an async save, every rank), after DCP wrote the data and
    before the RNG files and the commit; training goes on meanwhile when the save is async.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ENV = "OLMOCTL_TRAIN_FAULTS"
STALLED_FILE = ".stalled"


class Faults:
    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        if spec is None:
            raw = os.environ.get(ENV, "")
            spec = json.loads(raw) if raw else {}
        self.spec = spec

    def pause_after_step(self, step: int, rank: int) -> None:
        if self.spec.get("pause_after_step") != step:
            return
        gate = Path(self.spec["gate"])
        # Written whole, then renamed: the test reads the pid as soon as the name appears.
        tmp = Path(f"{gate}.partial-waiting.{rank}")  # not matched by `GATE.waiting.*`
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, f"{gate}.waiting.{rank}")
        while not gate.exists():
            time.sleep(0.01)

    def raise_after_step(self, step: int) -> None:
        if self.spec.get("raise_after_step") == step:
            raise RuntimeError(f"deliberate fault after step {step} (OLMOCTL_TRAIN_FAULTS)")

    def stall_save(self, step: int, where: str, ckpt_root: Path) -> None:
        if self.spec.get("stall_save_step") != step or self.spec.get("stall_at") != where:
            return
        (ckpt_root / STALLED_FILE).write_text(f"{step} {where} {os.getpid()}\n")
        while True:
            time.sleep(0.05)
