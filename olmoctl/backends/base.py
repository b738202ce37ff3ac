"""The one small interface every backend speaks: submit, query (batched), cancel."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

from olmoctl.schemas import RunSpec


@dataclass
class JobInfo:
    job_id: str
    state: str  # Slurm's state word: PENDING, RUNNING, COMPLETED, FAILED, NODE_FAIL, ...
    node_list: str | None = None
    start: float | None = None
    end: float | None = None
    exit_code: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class QueryResult:
    jobs: dict[str, JobInfo]
    source: str  # "sacct", "squeue" (accounting unavailable) or "local"
    note: str = ""


class Backend(Protocol):
    def check_reachable(self, spec: RunSpec) -> None:
        """Raise UsageError (one line) when the scheduler cannot be reached."""

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        """Submit the run's job; returns (job id, the exact script text submitted)."""

    def query(self, job_ids: list[str]) -> QueryResult:
        """States of all these jobs in ONE scheduler call."""

    def cancel(self, job_id: str) -> None: ...


def backend_for(spec_or_scheduler: RunSpec | str) -> Backend:
    scheduler = (
        spec_or_scheduler
        if isinstance(spec_or_scheduler, str)
        else spec_or_scheduler.cluster.scheduler
    )
    if scheduler == "local":
        from olmoctl.backends.local import LocalBackend

        return LocalBackend()
    from olmoctl.backends.slurm import SlurmBackend

    return SlurmBackend()
