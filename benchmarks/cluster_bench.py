"""What the benchmarks on the local real Slurm cluster (burnin.py, recovery.py) share: the
olmoctl next to this Python, a run's events, and waiting for a condition. Imported as
`cluster_bench` (a benchmark runs as a script: its folder is on sys.path)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OLMOCTL = str(Path(sys.executable).parent / "olmoctl")


def events(run_dir: Path) -> list[dict]:
    """RUN_DIR/events.jsonl as far as it reads; [] while there is none (or it is torn)."""
    try:
        return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    except (OSError, ValueError):
        return []


def wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """pred()'s first true value, polled every 0.2 s; exits the benchmark after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")
