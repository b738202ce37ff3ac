"""One attempt of the job on this rank: config -> torch.distributed -> Trainer -> exit status.

Errors: a UsageError (bad input) prints one line `olmoctl.train: error: ...` on stderr and
gives EXIT_BAD_INPUT; a full checkpoint filesystem (StorageFull) one line and EXIT_STORAGE;
anything else prints its traceback and gives EXIT_ERROR. Either way rank 0 writes an
`exiting` event when the run directory is known.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from olmoctl.errors import UsageError
from olmoctl.schemas.events import Exiting, ExitReason
from olmoctl.train.checkpoint.storage import SaveFailed, StorageFull
from olmoctl.train.observe.events import EventLog, Heartbeat
from olmoctl.train.runtime.exit_codes import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_REQUEUE, EXIT_STORAGE
from olmoctl.train.runtime.faults import Faults
from olmoctl.train.runtime.signals import StopFlag


@dataclass(frozen=True)
class Outcome:
    exit_status: int
    reason: str  # completed | preempted | error
    step: int
    signal: str | None = None


def _mark_requeue_ready(run_dir: Path, outcome: Outcome) -> None:
    """The save a stop signal asked for is complete (every rank took part): the batch script
    requeues the job when it finds this, whatever srun made of the ranks' exits."""
    from olmoctl.fileio import atomic_write
    from olmoctl.schemas.contract import REQUEUE_READY

    note = {"step": outcome.step, "signal": outcome.signal}
    try:
        atomic_write(run_dir / REQUEUE_READY, json.dumps(note) + "\n")
    except OSError as e:  # the step's exit status (42) may still tell the batch script
        print(f"olmoctl.train: cannot mark the run ready to requeue: {e}", file=sys.stderr)


def _mark_no_restart(run_dir: str | Path | None, denv: object, text: str) -> None:
    """This rank stopped on an error of the job's own (not a lost peer): say so to the batch
    script, which then does not restart the incarnation in its allocation."""
    from olmoctl.fileio import atomic_write
    from olmoctl.schemas import contract

    where = run_dir or os.environ.get("OLMOCTL_RUN_DIR")
    # Only under the restart loop (it sets OLMOCTL_INCARNATION), and only into a run directory
    # that exists: bad input creates nothing.
    if "OLMOCTL_INCARNATION" not in os.environ or not where or not Path(where).is_dir():
        return
    if contract.COLLECTIVE_SIGNS.search(text):
        return
    name = contract.no_restart_name(getattr(denv, "job_id", "?"), getattr(denv, "attempt", 0))
    try:
        folder = Path(where) / contract.BURNIN_DIR
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / name, text[-2000:] + "\n")
    except OSError as e:  # the restart then waits for Slurm's word on the nodes instead
        print(f"olmoctl.train: cannot write {name}: {e}", file=sys.stderr)


def run_job(config_path: str, run_dir: str | None = None) -> Outcome:
    stop = StopFlag().install()  # first: a signal during the imports below is kept
    from olmoctl.train.runtime import distributed
    from olmoctl.train.runtime.config import load_job_config

    denv = distributed.detect()
    events = EventLog(None, enabled=False)
    heartbeat: Heartbeat | None = None
    trainer = None
    step = 0
    agreed = False
    job = None
    try:
        job = load_job_config(config_path, run_dir)
        events = EventLog(job.run_dir, enabled=denv.rank == 0)
        if denv.rank == 0:  # TensorBoard / W&B when the recipe turns them on
            from olmoctl.train.observe.sinks import attach

            attach(events, job)
        from olmoctl.train.trainer import Trainer

        device, backend = distributed.pick_device(
            denv, job.cluster and job.cluster.distributed_backend
        )
        if device.type == "cpu":
            distributed.set_cpu_threads(denv)
        distributed.init_process_group(denv, backend, device)
        if denv.rank == 0:
            heartbeat = Heartbeat(
                events,
                job.recipe.train.heartbeat_interval_s,
                step=lambda: trainer.step if trainer is not None else 0,
                wake=stop.wake,
                pending_signal=lambda: stop.name,
            )
            heartbeat.start()
        hb = heartbeat
        trainer = Trainer(
            job,
            denv,
            device,
            events,
            stop,
            Faults(),
            on_signal=(lambda sig: hb.log_signal_once(sig)) if hb else (lambda sig: None),
        )
        trainer.setup()
        events.emit(trainer.started_event())
        result = trainer.run()
        outcome = Outcome(result.exit_status, result.reason, result.step, result.signal)
        events.emit(
            Exiting(reason=outcome.reason, exit_status=outcome.exit_status, step=outcome.step)
        )
        if outcome.exit_status == EXIT_REQUEUE and denv.rank == 0:
            _mark_requeue_ready(job.run_dir, outcome)
        return outcome
    except (UsageError, StorageFull) as e:
        step = trainer.step if trainer is not None else step
        status = EXIT_STORAGE if isinstance(e, StorageFull) else EXIT_BAD_INPUT
        agreed = isinstance(e, StorageFull)  # every rank stopped at this step, none waits
        print(f"olmoctl.train: error: {e}", file=sys.stderr, flush=True)
        _mark_no_restart(job.run_dir if job is not None else run_dir, denv, str(e))
        events.emit(Exiting(reason=ExitReason.ERROR, exit_status=status, step=step, error=str(e)))
        return Outcome(status, "error", step)
    except Exception as e:
        step = trainer.step if trainer is not None else step
        agreed = isinstance(e, SaveFailed)  # a failed save stops every rank at one step
        traceback.print_exc()
        sys.stderr.flush()
        _mark_no_restart(job.run_dir if job is not None else run_dir, denv, traceback.format_exc())
        first = (str(e).strip().splitlines() or [""])[0]
        events.emit(
            Exiting(
                reason=ExitReason.ERROR,
                exit_status=EXIT_ERROR,
                step=step,
                error=f"{type(e).__name__}: {first}",
            )
        )
        return Outcome(EXIT_ERROR, "error", step)
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        stop.restore()
        events.close()
        # After a failure, other ranks may be stuck in a collective: tearing the group down
        # could block (NCCL), so a multi-rank job just exits and srun/torchrun end the rest.
        if denv.world_size == 1 or agreed or (trainer is not None and trainer.finished):
            distributed.shutdown()
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m olmoctl.train",
        description="Run (or resume) the training job of a run directory.",
    )
    ap.add_argument(
        "config",
        help="RUN_DIR/spec.json (RunSpec, as the launcher writes it), or a recipe YAML/JSON "
        "for ad-hoc use with --run-dir",
    )
    ap.add_argument(
        "--run-dir",
        default=None,
        help="run directory (checkpoints, events.jsonl); overrides spec.run_dir; required "
        "with a plain recipe unless OLMOCTL_RUN_DIR is set",
    )
    args = ap.parse_args(argv)
    if not os.path.exists(args.config):
        print(f"olmoctl.train: error: {args.config}: not found", file=sys.stderr)
        return EXIT_BAD_INPUT
    ignore_late_warning()
    return run_job(args.config, args.run_dir).exit_status


def ignore_late_warning() -> None:
    """USR2 ignored outside run_job (its StopFlag puts this back): a warning that arrives as
    the process exits must not kill it. Python resets a signal it had a handler for to the
    default at exit, but leaves SIG_IGN alone."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
