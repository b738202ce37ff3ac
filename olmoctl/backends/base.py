"""The one interface every backend speaks (Slurm, local processes, a remote Slurm over SSH):
every capability core uses is declared here, and every backend implements all of them
(those that cannot say so with NotSupported). Which backend a run has: registry.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from olmoctl.backends.files import RunFiles
from olmoctl.backends.prefetch import Prefetch
from olmoctl.errors import OlmoctlError

if TYPE_CHECKING:  # pydantic models cost startup; `status` needs none
    from olmoctl.schemas import RunSpec


class NotSupported(OlmoctlError):
    """A capability this backend does not have (e.g. job arrays without Slurm)."""


# How far a job's clock may be behind ours when its event is matched to a job or an attempt
# by time (the local backend's `exiting` events, an attempt's event from before `started`);
# /proc's boot time is whole seconds, so a start time computed from it may be late by one.
CLOCK_SLACK_S = 2.0

# A local job's process that ended without its `exiting` event and without an exception of
# its own: a signal killed it (kill -9, the OOM killer). classify reads it as a rank killed.
KILLED_REASON = "ended without an exit of its own: killed by a signal (kill -9, the OOM killer?)"


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
    # Where this backend's run directories are: this machine, or a remote login node.
    files: RunFiles
    # Whether a sweep's single-node points can go as one (held) job array.
    supports_arrays: bool
    # Whether the job script is a Slurm batch script (#SBATCH lines, one srun task per
    # rank); else the backend runs the script's task command itself.
    batch_script: bool

    def job_command(self, spec: RunSpec) -> str:
        """The task command the rendered script runs on every rank (shell text, quoted)."""

    def check_reachable(self, spec: RunSpec) -> None:
        """Raise UsageError (one line) when the scheduler cannot be reached."""

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        """Submit the run's job; returns (job id, the exact script text submitted)."""

    def submit_script(self, spec: RunSpec, script_path: str) -> str:
        """Run a rendered script (already in the run directory) as one job, as it is: no
        submitit (`olmoctl doctor`'s preflight); returns its job id."""

    def query(self, jobs: Mapping[str, str]) -> QueryResult:
        """States of all these jobs (job id -> its run directory) in ONE scheduler call."""

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        """The controller's view (squeue) of these jobs: which are pending/running now."""

    def cancel(self, job_id: str, run_dir: str) -> None: ...

    def request_save(self, job_id: str, run_dir: str) -> None:
        """Ask the job to save at its next step boundary and stop, as at the time-limit
        warning (it requeues itself); NotSupported where there is no such path."""

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        """node -> (state, reason) for a node list expression such as node[1-3]."""

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        """Steer a pending job away from `nodes`; False when it is no longer pending."""

    def prefetch(self, want: Prefetch) -> None:
        """What a `status` pass will read, declared up front (backends/prefetch.py): a remote
        backend reads it all in one round trip and serves the later calls from it;
        elsewhere a no-op."""

    def rank_logs(self, run_dir: str, job_id: str) -> dict[int, Path]:
        """rank -> that rank's output file of one job."""

    def batch_log(self, run_dir: str, job_id: str) -> Path | None:
        """The batch script's own output file of one job (None: there is none)."""

    def recover_job_id(self, run_dir: str) -> str | None:
        """The job id of a submission whose launch stopped before recording it, from the
        files the submission left in the run directory; None if nothing was submitted."""

    # Job arrays (supports_arrays): submitted held, each task recorded, then released.
    def submit_array(self, script_path: str) -> str:
        """Submit the array script held (no task starts before release); its job id."""

    def submit_array_task(
        self, spec: RunSpec, script: str, array_id: str, index: int
    ) -> tuple[str, str]:
        """Make task `index` of a held array run `spec` (what submit() is for one job);
        returns (ARRAY_INDEX job id, script)."""

    def release_array(self, array_id: str) -> None: ...

    def cancel_array(self, array_id: str) -> None:
        """Best effort (used while undoing a failed sweep): never raises."""
