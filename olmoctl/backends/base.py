"""The one small interface every backend speaks: submit, query (batched), cancel."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    jobs: dict[str, JobInfo]  # the job's current (latest) record
    source: str  # "sacct", "squeue" (accounting unavailable) or "local"
    note: str = ""
    # Every incarnation of each job, oldest first (a Slurm requeue starts a new one).
    history: dict[str, list[JobInfo]] = field(default_factory=dict)


class Backend(Protocol):
    def check_reachable(self, spec: RunSpec) -> None:
        """Raise UsageError (one line) when the scheduler cannot be reached."""

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        """Submit the run's job; returns (job id, the exact script text submitted)."""

    def query(self, job_ids: list[str]) -> QueryResult:
        """States of all these jobs in ONE scheduler call."""

    def cancel(self, job_id: str) -> None: ...

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        """The controller's view (squeue) of these jobs: which are pending/running now."""

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        """node -> (state, reason) for a node list expression such as node[1-3]."""

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        """Steer a pending job away from `nodes`; False when it is no longer pending."""


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
