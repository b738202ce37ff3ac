"""This machine, no Slurm: submitit's LocalExecutor runs the job as local processes. The
job id is the controller's pid, kept with the controller's identity (pid + start time,
backends/procs.py: pids are reused); so another olmoctl process can answer `status` later,
and `cancel` never signals a stranger that got the pid since. How a job that ended went is
the job's own `exiting` event in RUN_DIR/events.jsonl, parsed as data: nothing in the run
directory is unpickled (submitit's result pickles there are anyone's who can write there).
No job arrays."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from olmoctl.backends import jobfiles, procs
from olmoctl.backends.base import (
    CLOCK_SLACK_S,
    KILLED_REASON,
    JobInfo,
    NotSupported,
    QueryResult,
)
from olmoctl.backends.files import LOCAL
from olmoctl.backends.prefetch import Prefetch
from olmoctl.errors import OlmoctlError, shown
from olmoctl.jobid import JobId, identity_of
from olmoctl.schemas import RunSpec
from olmoctl.schemas.contract import EVENTS_FILE
from olmoctl.schemas.events import Exiting, ExitReason, Started, parse_event

# How long `cancel` lets submitit's controller stop its tasks before killing what is left.
CANCEL_GRACE_S = 15.0
# How much of events.jsonl's end is read for the job's `exiting` event (its last line).
EVENTS_TAIL_BYTES = 256 * 1024
RAISED_TAIL_BYTES = 64 * 1024
_PID = re.compile(r"^[1-9][0-9]{0,9}$")
NO_IDENTITY = "no process identity was recorded for it (an older olmoctl launched it)"


def _identified(job_id: str) -> tuple[int, procs.Proc | None]:
    """The job's pid and, if one was recorded at submit, the controller's identity."""
    if not _PID.match(job_id):
        raise OlmoctlError(f"local job id {shown(job_id)} is not a pid")
    pid = int(job_id)
    return pid, procs.Proc.of_token(pid, identity_of(job_id))


def _own_job(pid: int) -> JobId:
    """The job id of a process this command just started (its Popen not yet reaped, so the
    pid cannot have been reused), with its identity."""
    proc = procs.identify(pid)
    return JobId(str(pid), proc.token if proc is not None else None)


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
        return _own_job(int(job.job_id)), script  # `job` holds the controller's Popen

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
        return _own_job(proc.pid)

    def query(self, jobs: Mapping[str, str]) -> QueryResult:
        found = {jid: self._info(jid, run_dir) for jid, run_dir in jobs.items()}
        return QueryResult(found, "local", history={j: [i] for j, i in found.items()})

    def _info(self, jid: str, run_dir: str | None) -> JobInfo:
        """RUNNING, UNKNOWN (a pid in use but no identity to tell whether it is the job), or
        how the job ended (only asked when run_dir is given)."""
        try:
            pid, proc = _identified(jid)
        except OlmoctlError:
            return JobInfo(jid, "UNKNOWN")
        if proc is None:  # an old row: the pid alone cannot say it is still the job
            now = procs.identify(pid)
            if now is not None and procs.running(now):
                return JobInfo(jid, "UNKNOWN", reason=f"pid {pid} is in use, but {NO_IDENTITY}")
        elif procs.running(proc):
            return JobInfo(jid, "RUNNING")
        if run_dir is None:
            return JobInfo(jid, "ENDED")
        since = proc.started_at() if proc is not None else None
        times = {"start": since, "end": time.time()}  # seen ended by now (kept once classified)
        reason = _exit_reason(run_dir, pid, since)
        if reason == ExitReason.COMPLETED:
            return JobInfo(jid, "COMPLETED", **times)
        if _cancelled_mark(run_dir, jid).exists():
            return JobInfo(jid, "CANCELLED", **times)
        if reason is None and proc is not None and not self._raised(run_dir, jid):
            return JobInfo(jid, "FAILED", reason=KILLED_REASON, **times)
        return JobInfo(jid, "FAILED", **times)

    def _raised(self, run_dir: str, jid: str) -> bool:
        """Whether a task of the job said it stopped on an exception (submitit's line, or a
        traceback): else it ended without a word of its own, killed."""
        for path in jobfiles.submitit_rank_logs(self.files, run_dir, jid).values():
            err = path.with_name(path.name.replace("_log.out", "_log.err"))
            for p in (path, err):
                try:
                    tail = self.files.read_tail(str(p), RAISED_TAIL_BYTES)
                except (OSError, OlmoctlError):
                    continue
                if b"triggered an exception" in tail or b"Traceback (most recent" in tail:
                    return True
        return False

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        infos = {j: self._info(j, None) for j in job_ids}
        return {j: i for j, i in infos.items() if i.state in ("RUNNING", "UNKNOWN")}

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        return {}

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        return False

    def cancel(self, job_id: str, run_dir: str) -> None:
        pid, proc = _identified(job_id)
        if proc is None:
            now = procs.identify(pid)
            if now is not None and procs.running(now):
                raise OlmoctlError(
                    f"local job {pid}: {NO_IDENTITY}, and pid {pid} is in use: not signalled "
                    "(it may be another process by now); stop the job yourself if it is yours"
                )
            _mark_cancelled(run_dir, job_id)  # gone: nothing to signal
            return
        _mark_cancelled(run_dir, job_id)
        tree = procs.descendants(proc)  # read now: once the controller is gone they are orphans
        procs.send(proc, signal.SIGINT)  # submitit's controller stops its tasks (SIGINT, KILL)
        # A controller interrupted at a bad moment (starting a task, under heavy load) can
        # leave tasks behind: whatever still lives after a grace period is killed.
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline and any(procs.running(p) for p in [proc, *tree]):
            time.sleep(0.1)
        for p in [proc, *tree, *procs.descendants(proc)]:
            if procs.running(p):
                procs.send(p, signal.SIGKILL)

    def request_save(self, job_id: str, run_dir: str) -> None:
        raise NotSupported("a local job cannot be restarted elsewhere (one machine)")

    def prefetch(self, want: Prefetch) -> None:
        return None

    def rank_logs(self, run_dir: str, job_id: str) -> dict[int, Path]:
        return jobfiles.submitit_rank_logs(self.files, run_dir, job_id)

    def batch_log(self, run_dir: str, job_id: str) -> Path | None:
        return None  # no batch script of its own: submitit's per-task logs are all there is

    def recover_job_id(self, run_dir: str) -> str | None:
        # From file names in the run directory: a plain pid, no identity (never signalled).
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


def _exit_reason(run_dir: str, pid: int, since: float | None) -> str | None:
    """The reason in the job's own `exiting` event: the last one after a `started` event of
    this job (job id: the pid; written after the process started, when that is known), or,
    when the tail holds no `started` event, written after the process started."""
    try:
        data = LOCAL.read_tail(f"{run_dir}/{EVENTS_FILE}", EVENTS_TAIL_BYTES)
    except OlmoctlError:  # a file refused as not regular: no word from the job
        return None
    lines = data.split(b"\n")
    if len(data) >= EVENTS_TAIL_BYTES:
        lines = lines[1:]  # the first line is probably cut

    def after_start(ts: float | None) -> bool:
        return since is None or (ts is not None and ts >= since - CLOCK_SLACK_S)

    mine: bool | None = None  # inside this job's events (None: no `started` seen yet)
    reason = None
    for line in lines:
        try:
            ev = parse_event(json.loads(line))
        except (ValueError, RecursionError):  # torn, foreign, or nested past the stack
            continue
        if isinstance(ev, Started):
            mine = ev.job_id == str(pid) and after_start(ev.ts)
        elif isinstance(ev, Exiting) and _whose(mine, since, after_start(ev.ts)):
            reason = ev.reason
    return reason


def _whose(mine: bool | None, since: float | None, after_start: bool) -> bool:
    """Whether an `exiting` event is this job's: inside its events, or, when the tail starts
    inside some job's events (no `started` seen), written after this process started."""
    if mine is None:
        return since is not None and after_start
    return mine


def _cancelled_mark(run_dir: str, job_id: str) -> Path:
    """olmoctl's own mark (not submitit's) that `cancel` stopped the job: a job that did not
    say it completed then ended CANCELLED, not FAILED."""
    return Path(jobfiles.submitit_folder(run_dir)) / f"{job_id}.cancelled"


def _mark_cancelled(run_dir: str, job_id: str) -> None:
    """Create the mark, never through a link someone left in its place (nor into a FIFO)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    with contextlib.suppress(OSError):
        os.close(os.open(_cancelled_mark(run_dir, job_id), flags, 0o644))


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
