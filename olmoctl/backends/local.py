"""This machine, no Slurm: submitit's LocalExecutor runs the job as local processes. The
job id is the controller's pid; its state comes from the pid and submitit's result file in
the run directory, so another olmoctl process can answer `status` later. No job arrays."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from olmoctl.backends import jobfiles
from olmoctl.backends.base import JobInfo, NotSupported, QueryResult
from olmoctl.backends.files import LOCAL
from olmoctl.backends.prefetch import Prefetch
from olmoctl.errors import OlmoctlError, shown
from olmoctl.schemas import RunSpec


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


# How long `cancel` lets submitit's controller stop its tasks before killing what is left.
CANCEL_GRACE_S = 15.0


def _descendants(pid: int) -> list[int]:
    """The pids below `pid` (Linux /proc; empty elsewhere or once it has gone)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


class LocalBackend:
    files = LOCAL
    supports_arrays = False
    batch_script = False  # the script runs the task command once; submitit starts the ranks

    def job_command(self, spec: RunSpec) -> str:
        return jobfiles.train_command(spec)

    def check_reachable(self, spec: RunSpec) -> None:
        return None

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        import submitit

        from olmoctl.train.submit_entry import TrainJob

        executor = submitit.LocalExecutor(folder=jobfiles.submitit_folder(spec.run_dir))
        executor.update_parameters(
            tasks_per_node=spec.cluster.tasks_per_node,
            nodes=1,
            timeout_min=max(1, _seconds(spec.time) // 60),
        )
        with _detached_stdio(), _profile_env(spec.cluster.env):
            job = executor.submit(TrainJob(), f"{spec.run_dir}/spec.json")
        return str(job.job_id), script

    def submit_script(self, spec: RunSpec, script_path: str) -> str:
        """bash runs the script (the local branch of the template: one process) detached,
        its output in logs/; the job id is its pid."""
        import subprocess

        log = Path(jobfiles.log_dir(spec.run_dir)) / "local-script.out"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ["bash", script_path],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return str(proc.pid)

    def query(self, jobs: Mapping[str, str]) -> QueryResult:
        found = {jid: JobInfo(jid, self._state(jid, run_dir)) for jid, run_dir in jobs.items()}
        return QueryResult(found, "local", history={j: [i] for j, i in found.items()})

    def _state(self, jid: str, run_dir: str) -> str:
        if not jid.isdigit():
            return "UNKNOWN"
        if _alive(int(jid)):
            return "RUNNING"
        if not run_dir:
            return "UNKNOWN"
        result = jobfiles.result_pickle(run_dir, jid)
        if not result.exists():
            return "CANCELLED" if _cancelled_mark(run_dir, jid).exists() else "FAILED"
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

    def cancel(self, job_id: str, run_dir: str) -> None:
        if not job_id.isdigit():
            raise OlmoctlError(f"local job id {shown(job_id)} is not a pid")
        mark = _cancelled_mark(run_dir, job_id)
        if mark.parent.is_dir():
            mark.touch()
        pid = int(job_id)
        tree = _descendants(pid)  # read now: once the controller is gone they are orphans
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # submitit's controller stops its tasks (SIGINT, KILL)
        # A controller interrupted at a bad moment (starting a task, under heavy load) can
        # leave tasks behind: whatever still lives after a grace period is killed.
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline and any(_alive(p) for p in [pid, *tree]):
            time.sleep(0.1)
        for p in [pid, *tree, *_descendants(pid)]:
            if _alive(p):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, signal.SIGKILL)

    def request_save(self, job_id: str, run_dir: str) -> None:
        raise NotSupported("a local job cannot be restarted elsewhere (one machine)")

    def prefetch(self, want: Prefetch) -> None:
        return None

    def rank_logs(self, run_dir: str, job_id: str) -> dict[int, Path]:
        return jobfiles.submitit_rank_logs(self.files, run_dir, job_id)

    def batch_log(self, run_dir: str, job_id: str) -> Path | None:
        return None  # no batch script of its own: submitit's per-task logs are all there is

    def recover_job_id(self, run_dir: str) -> str | None:
        ids = jobfiles.submitted_job_ids(self.files, run_dir)
        return ids[-1] if ids else None

    def submit_array(self, script_path: str) -> str:
        raise NotSupported("job arrays need Slurm; the local backend runs separate jobs")

    def submit_array_task(
        self, spec: RunSpec, script: str, array_id: str, index: int
    ) -> tuple[str, str]:
        raise NotSupported("job arrays need Slurm; the local backend runs separate jobs")

    def release_array(self, array_id: str) -> None:
        raise NotSupported("job arrays need Slurm; the local backend runs separate jobs")

    def cancel_array(self, array_id: str) -> None:
        return None  # there are none to cancel


def _cancelled_mark(run_dir: str, job_id: str) -> Path:
    """olmoctl's own mark (not submitit's) that `cancel` stopped the job: its missing result
    then means CANCELLED, not FAILED."""
    return Path(jobfiles.submitit_folder(run_dir)) / f"{job_id}.cancelled"


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
