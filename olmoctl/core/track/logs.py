"""Where a run's per-rank output lives, and reading only new bytes (for `logs -f`)."""

from __future__ import annotations

from pathlib import Path

from olmoctl.backends.base import Backend
from olmoctl.backends.files import LOCAL, RunFiles
from olmoctl.errors import UsageError, shown
from olmoctl.fileread import CHUNK, Refused
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
    (on a remote cluster too: `fs` reads from an offset there), at most fileread.CHUNK per
    file and call: `behind` says some file has more already (call again). A file that is
    not a regular file is not read: its refusal is in `refused` (and `news` once)."""

    def __init__(self, fs: RunFiles | None = None) -> None:
        self.fs = fs or LOCAL
        self.offsets: dict[Path, int] = {}
        self.refused: dict[Path, str] = {}
        self.news: list[str] = []  # refusals not yet taken by the caller
        self.behind = False

    def read_new_many(self, paths: list[Path]) -> list[bytes]:
        """New bytes of each file (b"" for a refused one), all read in one go."""
        got = self.fs.read_many([(str(p), self.offsets.get(p, 0)) for p in paths])
        out = []
        for p, data in zip(paths, got, strict=True):
            if isinstance(data, Refused):
                if p not in self.refused:
                    self.refused[p] = str(data)
                    self.news.append(str(data))
                data = b""
            self.offsets[p] = self.offsets.get(p, 0) + len(data)
            out.append(data)
        self.behind = any(len(d) >= CHUNK for d in out)
        return out

    def take_news(self) -> list[str]:
        news, self.news = self.news, []
        return news
