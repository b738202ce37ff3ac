"""Where a run's per-rank output lives, and reading only new bytes (for `logs -f`)."""

from __future__ import annotations

import re
from pathlib import Path

from olmoctl.core.launch import spec_of
from olmoctl.core.runfiles import LOCAL, RunFiles
from olmoctl.errors import UsageError, shown
from olmoctl.schemas import contract as rd
from olmoctl.store import Attempt, Run, Store

_RANK = re.compile(r"-rank(\d+)\.out$")


def rank_log_glob(run_dir: str, job_id: str) -> tuple[str, str]:
    """(folder, glob pattern) of a Slurm job's per-rank output files."""
    return str(Path(run_dir) / rd.LOGS_DIR), rd.rank_log_name(job_id, "*")


def batch_path(run_dir: str, job_id: str) -> str:
    return str(Path(run_dir) / rd.LOGS_DIR / rd.batch_log_name(job_id))


def rank_files(run: Run, attempt: Attempt, fs: RunFiles | None = None) -> dict[int, Path]:
    """rank -> output file of one attempt (Slurm: logs/JOB-rankR.out; local: submitit's);
    `fs`: where the run directory is (default: this machine)."""
    fs = fs or LOCAL
    spec = spec_of(run)
    job = attempt.job_id
    if not job:
        return {}
    if spec.cluster.scheduler == "local":
        folder = str(Path(spec.run_dir) / "submitit")
        found = [Path(p) for p in fs.glob(folder, f"{job}_*_log.out")]
        return {int(p.name.split("_")[1]): p for p in found}
    out = {}
    for p in map(Path, fs.glob(*rank_log_glob(spec.run_dir, job))):
        m = _RANK.search(p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def batch_file(run: Run, attempt: Attempt) -> Path | None:
    spec = spec_of(run)
    if spec.cluster.scheduler == "local" or not attempt.job_id:
        return None
    return Path(batch_path(spec.run_dir, attempt.job_id))


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
