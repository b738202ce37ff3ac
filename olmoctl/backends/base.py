"""The one small interface every backend speaks: submit, query (batched), cancel."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pydantic models cost startup; `status` needs none
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


def backend_key(cluster: dict[str, Any]) -> str:
    """A cluster profile's (as JSON) backend: its scheduler, or "ssh:{...}" for a remote one."""
    if cluster.get("ssh"):
        return "ssh:" + json.dumps(cluster["ssh"], sort_keys=True)
    return str(cluster.get("scheduler", "slurm"))


def backend_for(spec_or_scheduler: RunSpec | str) -> Backend:
    """The backend of a spec, or of a scheduler name / backend_key(); a remote (ssh) cluster
    gets this command's one SSHBackend for its login node (olmoctl.backends.ssh)."""
    if isinstance(spec_or_scheduler, str):
        scheduler = spec_or_scheduler
        if scheduler.startswith("ssh:"):
            from olmoctl.backends.ssh import backend_for_ssh
            from olmoctl.schemas.cluster import SSHConfig

            return backend_for_ssh(SSHConfig.model_validate_json(scheduler.removeprefix("ssh:")))
    else:
        if spec_or_scheduler.cluster.ssh is not None:
            from olmoctl.backends.ssh import backend_for_ssh

            return backend_for_ssh(spec_or_scheduler.cluster.ssh)
        scheduler = spec_or_scheduler.cluster.scheduler
    if scheduler == "local":
        from olmoctl.backends.local import LocalBackend

        return LocalBackend()
    from olmoctl.backends.slurm import SlurmBackend

    return SlurmBackend()
