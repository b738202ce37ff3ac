"""Slurm: submission through submitit (with olmoctl's rendered script as the submission
text), batched state queries through one sacct call (squeue when accounting is off), job
arrays (submitted held, each task's submitit pickle written, then released)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from olmoctl import fileread
from olmoctl.backends import jobfiles, slurm_cli
from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.backends.files import LOCAL
from olmoctl.backends.prefetch import Prefetch
from olmoctl.errors import OlmoctlError, UsageError, shown
from olmoctl.schemas import RunSpec
from olmoctl.schemas.shellsafe import check_host, check_job_id

# sinfo answers in milliseconds when the controller is up; a broken setup can hang on DNS.
REACH_TIMEOUT_S = 15


class SlurmBackend(jobfiles.SlurmJobLogs):
    files = LOCAL
    supports_arrays = True
    batch_script = True

    def job_command(self, spec: RunSpec) -> str:
        return jobfiles.submitit_command(spec)

    def check_reachable(self, spec: RunSpec) -> None:
        args = ["sinfo", "--noheader", "-o", "%P"]
        try:
            res = slurm_cli.run(args, timeout=REACH_TIMEOUT_S)
        except OlmoctlError as e:
            raise UsageError(
                f"cannot reach Slurm for cluster {shown(spec.cluster.name)}: {e}"
            ) from None
        if res.returncode != 0:
            why = (res.stderr.strip().splitlines() or ["no answer"])[-1]
            raise UsageError(f"cannot reach Slurm for cluster {shown(spec.cluster.name)}: {why}")
        partitions = {p.rstrip("*") for p in res.stdout.split()}
        part = spec.cluster.partition
        if part and part not in partitions:
            raise UsageError(
                f"cluster {shown(spec.cluster.name)}: partition {shown(part)} does not exist here "
                f"(valid: {', '.join(sorted(partitions))})"
            )

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        """Submit through submitit: the job runs olmoctl.train's submitit entry, the batch
        script is exactly `script` (rendered with submitit's task command in the slot)."""
        import submitit

        from olmoctl.train.submit_entry import TrainJob

        expected = self.job_command(spec)
        if expected not in script:
            raise OlmoctlError(f"the script does not run submitit's job command {shown(expected)}")

        class _Executor(submitit.SlurmExecutor):
            def _make_submission_file_text(self, command: str, uid: str) -> str:
                if command != expected:  # the slot must hold what render() put there
                    raise OlmoctlError(
                        f"submitit command {shown(command)} != rendered {shown(expected)}"
                    )
                # The caller's rendered text itself (a remote cluster's login node submits
                # exactly what the local olmoctl rendered).
                return script

        executor = _Executor(
            folder=jobfiles.submitit_folder(spec.run_dir),
            python=jobfiles.python_command(spec),  # shell text: submitit pastes it as is
            max_num_timeout=spec.cluster.max_requeues,
        )
        executor.update_parameters(
            nodes=spec.nodes,
            ntasks_per_node=spec.cluster.tasks_per_node,
            time=_minutes(spec.time),
        )
        try:
            job = executor.submit(TrainJob(), f"{spec.run_dir}/spec.json")
        except Exception as e:  # submitit wraps sbatch's stderr in its own error types
            text = str(e).strip().splitlines()
            raise OlmoctlError(f"sbatch failed: {text[-1] if text else e}") from None
        try:  # what submitit wrote, read as any run-directory file (olmoctl.fileread)
            data = fileread.read_head(Path(job.paths.submission_file), fileread.WHOLE_MAX)
        except (OSError, fileread.Refused):
            return str(job.job_id), script
        return str(job.job_id), data.decode(errors="replace")

    def submit_script(self, spec: RunSpec, script_path: str) -> str:
        res = slurm_cli.run(["sbatch", "--parsable", script_path])
        if res.returncode != 0:
            why = (res.stderr.strip().splitlines() or ["no answer"])[-1]
            raise OlmoctlError(f"sbatch failed: {why}")
        return res.stdout.strip().split(";")[0]

    def query(self, jobs: Mapping[str, str]) -> QueryResult:
        job_ids = list(jobs)
        if not job_ids:
            return QueryResult({}, "sacct")
        history, why = slurm_cli.sacct(job_ids)
        if history is not None:
            latest = {j: recs[-1] for j, recs in history.items() if recs}
            return QueryResult(latest, "sacct", history=history)
        jobs = slurm_cli.squeue(job_ids)
        note = f"accounting unavailable ({why}); used squeue"
        return QueryResult(jobs, "squeue", note, history={j: [i] for j, i in jobs.items()})

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        return slurm_cli.squeue(job_ids) if job_ids else {}

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        return slurm_cli.node_states(nodes)

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        try:  # argv, not shell, but a comma, '=' or space would steer scontrol elsewhere
            check_job_id(job_id, "job id")
            for node in nodes:
                check_host(node)
        except ValueError as e:
            raise OlmoctlError(f"scontrol update: {e}") from None
        res = slurm_cli.run(
            ["scontrol", "update", f"JobId={job_id}", f"ExcNodeList={','.join(nodes)}"]
        )
        return res.returncode == 0

    def cancel(self, job_id: str, run_dir: str) -> None:
        res = slurm_cli.run(["scancel", job_id])
        if res.returncode != 0:
            raise OlmoctlError(f"scancel {job_id} failed: {res.stderr.strip()}")

    def request_save(self, job_id: str, run_dir: str) -> None:
        # The time-limit warning's signal (--signal=USR2@N), to the job's steps: the ranks
        # save at the next step boundary and the job requeues itself.
        try:
            check_job_id(job_id, "job id")
        except ValueError as e:
            raise OlmoctlError(f"scancel: {e}") from None
        res = slurm_cli.run(["scancel", "--signal=USR2", job_id])
        if res.returncode != 0:
            raise OlmoctlError(f"scancel --signal=USR2 {job_id} failed: {res.stderr.strip()}")

    def prefetch(self, want: Prefetch) -> None:
        return None  # the files are here: read when asked

    # job arrays: sbatch/scontrol/scancel on the whole array, submitit's pickle per task
    def submit_array(self, script_path: str) -> str:
        """Submit held: no task starts before every point is recorded and its pickle
        written; release_array() lets them go."""
        res = slurm_cli.run(["sbatch", "--parsable", "--hold", script_path])
        if res.returncode != 0:
            why = (res.stderr.strip().splitlines() or ["no answer"])[-1]
            raise OlmoctlError(f"sbatch failed: {why}")
        return res.stdout.strip().split(";")[0]

    def submit_array_task(
        self, spec: RunSpec, script: str, array_id: str, index: int
    ) -> tuple[str, str]:
        """Task `index` runs submitit's job command like a single job: it loads the
        ARRAY_TASK pickle, as submitit itself names an array task's."""
        job_id = f"{array_id}_{index}"
        jobfiles.write_submitted_pickle(spec, job_id)
        return job_id, script

    def release_array(self, array_id: str) -> None:
        res = slurm_cli.run(["scontrol", "release", array_id])
        if res.returncode != 0:
            raise OlmoctlError(f"scontrol release {array_id} failed: {res.stderr.strip()}")

    def cancel_array(self, array_id: str) -> None:
        with contextlib.suppress(OlmoctlError):
            slurm_cli.run(["scancel", array_id])


def _minutes(time: str) -> int:
    from olmoctl.schemas.cluster import parse_time

    return max(1, parse_time(time) // 60)
