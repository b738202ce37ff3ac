"""Slurm: submission through submitit (with olmoctl's rendered script as the submission
text), batched state queries through one sacct call (squeue when accounting is off)."""

from __future__ import annotations

from pathlib import Path

from olmoctl.backends import slurm_cli
from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.errors import OlmoctlError, UsageError, shown
from olmoctl.schemas import RunSpec

# sinfo answers in milliseconds when the controller is up; a broken setup can hang on DNS.
REACH_TIMEOUT_S = 15


def submitit_folder(spec: RunSpec) -> str:
    return f"{spec.run_dir}/submitit"


class SlurmBackend:
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

        from olmoctl.core.render import render, submitit_command
        from olmoctl.train.submit_entry import TrainJob

        expected = submitit_command(spec)

        class _Executor(submitit.SlurmExecutor):
            def _make_submission_file_text(self, command: str, uid: str) -> str:
                if command != expected:  # the slot must hold what render() put there
                    raise OlmoctlError(
                        f"submitit command {shown(command)} != rendered {shown(expected)}"
                    )
                # The caller's rendered text itself (a remote cluster's login node submits
                # exactly what the local olmoctl rendered); render() if it has no slot.
                return script if expected in script else render(spec, task_command=command)

        executor = _Executor(
            folder=submitit_folder(spec),
            python=spec.cluster.python,
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
        submitted = Path(job.paths.submission_file)
        return str(job.job_id), submitted.read_text() if submitted.exists() else script

    def query(self, job_ids: list[str]) -> QueryResult:
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
        res = slurm_cli.run(
            ["scontrol", "update", f"JobId={job_id}", f"ExcNodeList={','.join(nodes)}"]
        )
        return res.returncode == 0

    def cancel(self, job_id: str) -> None:
        res = slurm_cli.run(["scancel", job_id])
        if res.returncode != 0:
            raise OlmoctlError(f"scancel {job_id} failed: {res.stderr.strip()}")


def _minutes(time: str) -> int:
    from olmoctl.schemas.cluster import parse_time

    return max(1, parse_time(time) // 60)
