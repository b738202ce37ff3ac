"""The submitit callable the launcher submits: `TrainJob()(spec_path)`, one call per task.

On SIGUSR2 (Slurm's `--signal=USR2@N`), the job saves a checkpoint at the next step
boundary; rank 0 then hands over to submitit's own USR2 handler, which calls
`TrainJob.checkpoint` (a DelayedSubmission of the same spec: resuming needs nothing else,
the run directory holds the state), requeues the Slurm job and exits. SIGTERM (preemption,
scancel) saves the same way but leaves requeueing to Slurm. submitit is imported here only.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import submitit

from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.train.exit_codes import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_REQUEUE


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
        submitit_usr2 = signal.getsignal(signal.SIGUSR2)  # submitit's checkpoint+requeue
        outcome = run_job(spec_path)
        if outcome.exit_status == EXIT_REQUEUE:
            if outcome.signal == "SIGUSR2" and env.global_rank == 0 and callable(submitit_usr2):
                submitit_usr2(signal.SIGUSR2, None)  # checkpoint(), scontrol requeue, exit
            return {
                "exit_status": outcome.exit_status,
                "reason": outcome.reason,
                "step": outcome.step,
            }
        if outcome.exit_status == EXIT_BAD_INPUT:
            raise UsageError(f"bad input (see the rank log); stopped at step {outcome.step}")
        if outcome.exit_status != EXIT_COMPLETED:
            raise TrainFailed(
                f"training failed at step {outcome.step} (exit status {outcome.exit_status})"
            )
        return {"exit_status": outcome.exit_status, "reason": outcome.reason, "step": outcome.step}

    def checkpoint(self, spec_path: str) -> submitit.helpers.DelayedSubmission:
        # The checkpoint itself is already on disk (saved at the step boundary); resubmit
        # the same call, which resumes from the newest complete checkpoint.
        return submitit.helpers.DelayedSubmission(TrainJob(), spec_path)
