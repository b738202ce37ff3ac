"""Where a run's per-rank output lives, and reading only new bytes (for `logs -f`)."""

from __future__ import annotations

import re
from pathlib import Path

from olmoctl.core.launch import spec_of
from olmoctl.errors import UsageError

_RANK = re.compile(r"-rank(\d+)\.out$")


def rank_files(run, attempt) -> dict[int, Path]:
    """rank -> output file of one attempt (Slurm: logs/JOB-rankR.out; local: submitit's)."""
    spec = spec_of(run)
    job = attempt["job_id"]
    if not job:
        return {}
    if spec.cluster.scheduler == "local":
        folder = Path(spec.run_dir) / "submitit"
        return {int(p.name.split("_")[1]): p for p in sorted(folder.glob(f"{job}_*_log.out"))}
    out = {}
    for p in sorted((Path(spec.run_dir) / "logs").glob(f"{job}-rank*.out")):
        m = _RANK.search(p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def batch_file(run, attempt) -> Path | None:
    spec = spec_of(run)
    if spec.cluster.scheduler == "local" or not attempt["job_id"]:
        return None
    return Path(spec.run_dir) / "logs" / f"slurm-{attempt['job_id']}.out"


def pick_attempt(store, run_name: str, attempt_no: int | None):
    attempts = store.attempts(run_name)
    if not attempts:
        raise UsageError(f"run {run_name!r} has no attempts")
    if attempt_no is None:
        return attempts[-1]
    for a in attempts:
        if a["attempt_no"] == attempt_no:
            return a
    raise UsageError(f"run {run_name!r} has no attempt {attempt_no} (it has 1..{len(attempts)})")


class Follower:
    """Reads each file from where it stopped last time: only new bytes, never the whole."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}

    def read_new(self, path: Path) -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
        except OSError:
            return b""
        self.offsets[path] = self.offsets.get(path, 0) + len(data)
        return data
