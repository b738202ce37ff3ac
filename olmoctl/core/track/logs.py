"""Where a run's per-rank output lives, and reading only new bytes (for `logs -f`)."""

from __future__ import annotations

from pathlib import Path

from olmoctl.backends.base import Backend
from olmoctl.backends.files import LOCAL, RunFiles
from olmoctl.errors import UsageError, shown
from olmoctl.store import Attempt, Run, Store


def rank_files(backend: Backend, run: Run, attempt: Attempt) -> dict[int, Path]:
    """rank -> output file of one attempt, wherever its backend puts them (Slurm:
    logs/JOB-rankR.out; local: submitit's per-task logs; remote: on the login node)."""
    job = attempt.job_id
    return backend.rank_logs(run.run_dir, job) if job else {}


def batch_file(backend: Backend, run: Run, attempt: Attempt) -> Path | None:
    """The batch script's own output of one attempt (None where there is none)."""
    job = attempt.job_id
    return backend.batch_log(run.run_dir, job) if job else None


def pick_attempt(store: Store, run_name: str, attempt_no: int | None) -> Attempt:
    attempts = store.attempts(run_name)
    if not attempts:
        raise UsageError(f"run {shown(run_name)} has no attempts")
    if attempt_no is None:
        return attempts[-1]
    for a in attempts:
        if a.attempt_no == attempt_no:
            return a
    raise UsageError(
        f"run {shown(run_name)} has no attempt {attempt_no} (it has 1..{len(attempts)})"
    )


class Follower:
    """Reads each file from where it stopped last time: only new bytes, never the whole
    (on a remote cluster too: `fs` reads from an offset there)."""

    def __init__(self, fs: RunFiles | None = None) -> None:
        self.fs = fs or LOCAL
        self.offsets: dict[Path, int] = {}

    def read_new_many(self, paths: list[Path]) -> list[bytes]:
        """New bytes of each file, all read in one go."""
        got = self.fs.read_many([(str(p), self.offsets.get(p, 0)) for p in paths])
        for p, data in zip(paths, got, strict=True):
            self.offsets[p] = self.offsets.get(p, 0) + len(data)
        return got
