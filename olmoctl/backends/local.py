"""This machine, no Slurm: submitit's LocalExecutor runs the job as local processes. The
job id is the controller's pid; its state comes from the pid and submitit's result file,
so another olmoctl process can answer `status` later."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Iterator
from pathlib import Path

from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.errors import OlmoctlError, shown
from olmoctl.schemas import RunSpec

# job id -> submitit folder, filled by submit and by the store (see register_folder).
_FOLDERS: dict[str, Path] = {}


def register_folder(job_id: str, folder: str | Path) -> None:
    _FOLDERS[job_id] = Path(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own finished child) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class LocalBackend:
    def check_reachable(self, spec: RunSpec) -> None:
        return None

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        import submitit

        from olmoctl.train.submit_entry import TrainJob

        folder = f"{spec.run_dir}/submitit"
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(
            tasks_per_node=spec.cluster.tasks_per_node,
            nodes=1,
            timeout_min=max(1, _seconds(spec.time) // 60),
        )
        with _detached_stdio(), _profile_env(spec.cluster.env):
            job = executor.submit(TrainJob(), f"{spec.run_dir}/spec.json")
        register_folder(str(job.job_id), folder)
        return str(job.job_id), script

    def query(self, job_ids: list[str]) -> QueryResult:
        jobs = {}
        for jid in job_ids:
            folder = _FOLDERS.get(jid)
            jobs[jid] = JobInfo(jid, self._state(jid, folder))
        return QueryResult(jobs, "local", history={j: [i] for j, i in jobs.items()})

    def _state(self, jid: str, folder: Path | None) -> str:
        if not jid.isdigit():
            return "UNKNOWN"
        if _alive(int(jid)):
            return "RUNNING"
        if folder is None:
            return "UNKNOWN"
        result = folder / f"{jid}_0_result.pkl"
        if not result.exists():
            cancelled = folder / f"{jid}.cancelled"
            return "CANCELLED" if cancelled.exists() else "FAILED"
        try:
            outcome = pickle.loads(result.read_bytes())[0]
        except Exception:
            return "FAILED"
        return "COMPLETED" if outcome == "success" else "FAILED"

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        return {j: JobInfo(j, "RUNNING") for j in job_ids if j.isdigit() and _alive(int(j))}

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        return {}

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        return False

    def cancel(self, job_id: str) -> None:
        if not job_id.isdigit():
            raise OlmoctlError(f"local job id {shown(job_id)} is not a pid")
        folder = _FOLDERS.get(job_id)
        if folder is not None:
            (folder / f"{job_id}.cancelled").touch()
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(job_id), signal.SIGINT)


@contextlib.contextmanager
def _profile_env(env: dict[str, str]) -> Iterator[None]:
    """The profile's environment (e.g. OMP_NUM_THREADS: oversubscribed OpenMP threads make a
    CPU job hundreds of times slower) for the job's processes, which copy ours."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: os.path.expandvars(v) for k, v in env.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _detached_stdio() -> Iterator[None]:
    """The job outlives this command: it must not hold our stdout/stderr open (a pipe to
    `olmoctl launch` would then wait for the job's end). Its output goes to its log files."""
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        yield
    finally:
        for fd, old in zip((0, 1, 2), saved, strict=True):
            os.dup2(old, fd)
            os.close(old)
        os.close(null)


def _seconds(time: str) -> int:
    from olmoctl.schemas.cluster import parse_time

    return parse_time(time)
