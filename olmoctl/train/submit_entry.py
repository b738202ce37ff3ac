"""The submitit callable the launcher submits: `TrainJob()(spec_path)`, one call per task.

On SIGUSR2 (forwarded by the batch script, which Slurm warns with `--signal=B:USR2@N`) or
SIGTERM, the job saves a checkpoint at the next step boundary and every rank exits with
EXIT_REQUEUE (42). Requeueing is the batch script's, on the host: nothing here calls Slurm,
so the job side runs in a container without Slurm's clients. submitit's own USR2 handler
(checkpoint + `scontrol requeue` from rank 0) is switched off. A requeued job runs
submitit's pickle of the same call again, which resumes from the newest complete checkpoint
in the run directory. submitit is imported here only.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import submitit

from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.train.runtime.exit_codes import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_REQUEUE


class TrainFailed(OlmoctlError):
    """The job failed (exit status and reason in the message; details in the rank log)."""


def _step_is_the_job() -> None:
    """submitit reads the job's node list and count; after a burn-in the training step runs
    on some nodes of the allocation (srun --nodelist), so make the step's the job's."""
    step_nodes = os.environ.get("SLURM_STEP_NODELIST")
    step_count = os.environ.get("SLURM_STEP_NUM_NODES")
    if step_nodes and step_count:
        os.environ["SLURM_JOB_NODELIST"] = step_nodes
        os.environ["SLURM_JOB_NUM_NODES"] = step_count


class TrainJob(submitit.helpers.Checkpointable):
    def __call__(self, spec_path: str) -> dict[str, Any]:
        # In place of submitit's USR2 handler, which would requeue from inside the job; the
        # trainer's own (train/runtime/signals.py) sits on top while it runs.
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        from olmoctl.schemas.contract import master_port_for
        from olmoctl.train.run import run_job

        _step_is_the_job()
        env = submitit.JobEnvironment()
        os.environ.setdefault("OLMOCTL_JOB_ID", str(env.job_id))
        if not os.environ.get("MASTER_PORT"):
            os.environ["MASTER_PORT"] = str(master_port_for(str(env.job_id)))
        # MASTER_ADDR = the first host, MASTER_PORT as above (or as the batch script set it).
        submitit.helpers.TorchDistributedEnvironment().export(
            set_cuda_visible_devices=False, overwrite=True
        )
        outcome = run_job(spec_path)
        if outcome.exit_status == EXIT_REQUEUE:
            # Saved and stopped: the process ends with 42 and leaves no result pickle (the
            # job is not over); the batch script requeues it.
            raise SystemExit(EXIT_REQUEUE)
        if outcome.exit_status == EXIT_BAD_INPUT:
            raise UsageError(f"bad input (see the rank log); stopped at step {outcome.step}")
        if outcome.exit_status != EXIT_COMPLETED:
            raise TrainFailed(
                f"training failed at step {outcome.step} (exit status {outcome.exit_status})"
            )
        return {"exit_status": outcome.exit_status, "reason": outcome.reason, "step": outcome.step}

    def checkpoint(self, spec_path: str) -> submitit.helpers.DelayedSubmission:
        # Kept for submitit's interface (Checkpointable); olmoctl never requeues through it.
        # The state is in the run directory: the same call resumes.
        return submitit.helpers.DelayedSubmission(TrainJob(), spec_path)
