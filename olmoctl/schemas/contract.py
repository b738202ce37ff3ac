"""The run directory: the files the launcher and the job share, named once for both sides.

The launcher (olmoctl.core) writes spec.json and the attempt scripts and reads what the job
writes; the job (olmoctl.train) reads spec.json and writes events, data order, checkpoints.
Both import their names, the checkpoint layout and the MASTER_PORT formula from here, so the
two sides cannot drift apart. Stdlib only: `olmoctl status` imports it.

RUN_DIR/
  spec.json                  the resolved RunSpec (launcher)
  scripts/attempt-N.sh       each attempt's exact batch script (launcher)
  logs/slurm-JOB.out         the batch script's output;  logs/JOB-rankR.out  per rank
  record.json                what the run needs to be re-run (launcher: olmoctl.core.records.record)
  code/HASH.diff             local source changes at submission (launcher)
  events.jsonl               one JSON event per line, rank 0 (job: olmoctl.schemas.events)
  global_indices.npy (+.json) the run's data order and what it was made from (job)
  held_out_indices.npy       training instances kept out for eval.held_out_fraction (job)
  tensorboard/, wandb/       metrics sinks' files, when the recipe turns them on (job)
  data/synthetic.npy         the built-in corpus, tokenized, when the recipe names no files
  checkpoints/step_NNNNNNNN/ a checkpoint; complete once it holds `.complete` (job)
  burnin/JOB-RESTART.verdict what the burn-in found, for the batch script (job: train/burnin)
"""

from __future__ import annotations

import re
from pathlib import Path

SPEC_FILE = "spec.json"
SCRIPTS_DIR = "scripts"
LOGS_DIR = "logs"
RECORD_FILE = "record.json"
CODE_DIR = "code"  # RUN_DIR/code/<diff sha256 prefix>.diff
EVENTS_FILE = "events.jsonl"
INDICES_FILE = "global_indices.npy"
INDICES_META = "global_indices.json"
HELD_OUT_FILE = "held_out_indices.npy"
TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"  # wandb itself adds the wandb/ below RUN_DIR
SYNTHETIC_FILE = "data/synthetic.npy"
CHECKPOINTS_DIR = "checkpoints"
# Rank 0 writes this after the save that a stop signal asked for, just before every rank
# exits with EXIT_REQUEUE; the batch script removes it before the step starts and requeues
# the job from the host when it is there (srun --kill-on-bad-exit may turn slower ranks'
# 42 into a kill, so the step's status alone cannot say it).
REQUEUE_READY = "requeue-ready"
BURNIN_DIR = "burnin"


def no_restart_name(job_id: str, incarnation: int | str) -> str:
    """In burnin/: a rank's mark that its incarnation stopped on an error of the job's own
    (code, input, a full disk), which a restart on other nodes would only repeat: the batch
    script then does not restart it in the allocation (templates/restarts.sh.j2)."""
    return f"{job_id}-{incarnation}.no-restart"


# The words of a failed collective (a peer lost, a link cut, a timeout in the communication
# library), as opposed to the job's own error: the classifier's COLLECTIVE class, and the
# errors after which the job side leaves no no-restart mark.
COLLECTIVE_SIGNS = re.compile(
    r"Watchdog caught collective operation timeout|ProcessGroupNCCL.*(timeout|Timeout|error)"
    r"|NCCL (error|WARN).*(remote process exited|unhandled system error|Timeout)"
    r"|ncclSystemError|ncclRemoteError|ncclInternalError|RCCL.*error|DistNetworkError"
    r"|Connection closed by peer|Connection reset by peer|gloo/transport"
)


def verdict_name(job_id: str, restart: int | str) -> str:
    """One incarnation's burn-in verdict in burnin/ (schemas/burnin.py says what it holds)."""
    return f"{job_id}-{restart}.verdict"


def script_file(attempt_no: int) -> str:
    """The attempt's script, relative to the run directory."""
    return f"{SCRIPTS_DIR}/attempt-{attempt_no}.sh"


def batch_log_name(job_id: str) -> str:
    """The batch script's output in logs/ (`#SBATCH --output=logs/slurm-%j.out`)."""
    return f"slurm-{job_id}.out"


def rank_log_name(job_id: str, rank: int | str) -> str:
    """One rank's output in logs/ (`srun --output=logs/%j-rank%t.out`); rank may be a glob."""
    return f"{job_id}-rank{rank}.out"


# ------------------------------------------------------------------ checkpoint layout
# checkpoints/step_00000010/ holds DCP's .metadata + shards, rng_RRRRR.pt per rank,
# trainer_state.json, and COMPLETE_MARKER, written last (JSON: step, bytes, hashes, ...).
# checkpoints/.tmp-step_N/ is a save in progress (or torn): never loaded.
COMPLETE_MARKER = ".complete"
DCP_METADATA = ".metadata"
TRAINER_STATE = "trainer_state.json"
CHECKPOINT_TMP_PREFIX = ".tmp-"
_STEP_RE = re.compile(r"^step_([0-9]{8,18})$")  # ASCII digits, a step that fits int64


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def parse_step_dir(name: str) -> int | None:
    """The step of a checkpoint folder named by step_dir_name, else None."""
    m = _STEP_RE.match(name)
    return int(m.group(1)) if m else None


def is_permanent_step(step: int, permanent_every: int) -> bool:
    """A checkpoint kept for good (recipe checkpoint.permanent_interval_steps; 0 = none):
    retention never deletes it. The job marks it in .complete; `olmoctl status` shows it."""
    return permanent_every > 0 and step > 0 and step % permanent_every == 0


def checkpoints_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR


# ------------------------------------------------------------------ rendezvous port
# Rank 0 listens on a port derived from the job id, so concurrent jobs on one node never
# collide. The batch script computes it in bash ($SLURM_JOB_ID); the job computes it when
# the script did not export it (plain srun, submitit).
MASTER_PORT_BASE = 20000
MASTER_PORT_SPAN = 20000
LOCAL_MASTER_PORT = 29500  # one-node jobs outside Slurm


def master_port_for(job_id: str) -> int:
    """MASTER_PORT_BASE + job id % MASTER_PORT_SPAN (an array task's id: its job's digits)."""
    # ASCII digits only; the last nine give the same remainder (SPAN divides 10**9) and keep
    # int() bounded whatever the id holds.
    digits = re.sub(r"[^0-9]", "", job_id.split("_")[0])[-9:] or "0"
    return MASTER_PORT_BASE + int(digits) % MASTER_PORT_SPAN


def master_port_shell(job_id_var: str = "SLURM_JOB_ID") -> str:
    """master_port_for as a bash arithmetic expression, for the batch script."""
    return f"$(({MASTER_PORT_BASE} + {job_id_var} % {MASTER_PORT_SPAN}))"


# The burn-in's own rendezvous (a TCPStore on the allocation's first node): a port range
# apart from MASTER_PORT's, so a burn-in never meets a training job's store.
BURNIN_PORT_BASE = 40000


def burnin_port_for(job_id: str) -> int:
    return BURNIN_PORT_BASE + master_port_for(job_id) - MASTER_PORT_BASE
