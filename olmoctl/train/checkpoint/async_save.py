"""Checkpoint saves, synchronous or in the background (recipe `checkpoint.async`).

Asynchronous: `save()` captures the state dict's structure, the RNG states and the trainer
state at the step boundary and hands the rest to one writer thread, which

  1. (rank 0) clears torn leftovers and makes .tmp-step_N; every rank agrees it worked;
  2. stages: copies every tensor into CPU buffers kept from save to save (pinned, on a side
     CUDA stream, on GPU). The trainer waits for this (`before_update`) only before the next
     optimizer step, which is the first thing that changes the tensors; forward and backward
     of that step overlap the copy;
  3. writes with DCP (torch.distributed.checkpoint.save on a gloo group of its own, so its
     collectives never interleave with the training's: async DCP needs a CPU backend, and
     NCCL may not be used from two threads), `checkpoint.writer_threads` files per rank,
     fsync'd, then each rank's RNG file;
  4. agrees with the other ranks (all-reduce: ok / failed / no space), and rank 0 commits:
     trainer_state.json, rename to step_N, `.complete` last, then retention.

At most one save is in flight: the next `save()` waits for the previous one. The trainer
calls `poll()` at every step boundary (its flag rides on the step's all-reduce, so every
rank stops at the same step when a save failed) and `wait()` before exiting, so the final
save and a signal's save are complete before the process ends. A crash at any point leaves
the newest *complete* checkpoint as it was: `.complete` is written only after every byte.

Synchronous: the same steps in the calling thread, writing the live tensors (no copy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed._state_dict_utils import _copy_state_dict, _create_cpu_state_dict
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import get_state_dict

from olmoctl.schemas.contract import is_permanent_step, step_dir_name
from olmoctl.schemas.events import CheckpointSaved
from olmoctl.schemas.recipe import CheckpointConfig
from olmoctl.train.checkpoint import dcp as ckpt
from olmoctl.train.checkpoint.storage import (
    SaveFailed,
    StorageFull,
    first_line,
    is_no_space,
    no_space_line,
)
from olmoctl.train.runtime.faults import Faults

OK, FAILED, NO_SPACE = 0, 1, 2


@dataclass
class _Job:
    step: int
    state: dict[str, Any]
    rng: dict[str, Any]
    trainer_state: dict[str, Any]
    marker: dict[str, Any]
    t0: float
    stall_s: float = 0.0
    ready: Any = None  # CUDA event: the optimizer step before this save has run
    staged: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    nbytes: int = 0
    seconds: float = 0.0
    reported: bool = False
    thread: threading.Thread | None = None


class _WriterThreadErrors:
    """DCP's extra writer threads (`checkpoint.writer_threads` > 1) die with their exception
    unseen by dcp.save: it returns without their files' results (torch 2.13). Catch what
    they raise through threading.excepthook, so a save with a lost file fails instead of
    committing, and no traceback is printed for a failure the job reports in one line."""

    TARGET = "_write_files_from_queue"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.previous = threading.excepthook
        threading.excepthook = self._hook

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        if args.thread is not None and self.TARGET in args.thread.name and args.exc_value:
            with self.lock:
                self.errors.append(args.exc_value)
            return
        self.previous(args)

    def take(self) -> BaseException | None:
        with self.lock:
            errors, self.errors = self.errors, []
        return errors[0] if errors else None


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        local = obj.to_local() if hasattr(obj, "to_local") else obj
        return local.numel() * local.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


class Saver:
    def __init__(
        self,
        root: Path,
        *,
        async_save: bool,
        writer_threads: int,
        keep_last: int,
        permanent_every: int,
        device: torch.device,
        faults: Faults,
        emit: Callable[[CheckpointSaved], None],
        log: Callable[[str], None],
    ) -> None:
        self.root, self.async_save, self.writer_threads = root, async_save, writer_threads
        self.keep_last, self.permanent_every = keep_last, permanent_every
        self.device, self.faults, self.emit, self.log = device, faults, emit, log
        self.rank = dist.get_rank()
        # Collective call on every rank: the writer's own CPU group.
        self.pg = dist.new_group(backend="gloo")
        self._job: _Job | None = None
        self._buffers: Any = None  # staging buffers, reused while the structure holds
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._thread_errors = _WriterThreadErrors()

    @classmethod
    def for_recipe(
        cls,
        c: CheckpointConfig,
        root: Path,
        device: torch.device,
        faults: Faults,
        emit: Callable[[CheckpointSaved], None],
        log: Callable[[str], None],
    ) -> Saver:
        """`checkpoint.async` unset: asynchronous on GPU, synchronous on CPU."""
        return cls(
            root,
            async_save=c.async_save if c.async_save is not None else device.type != "cpu",
            writer_threads=c.writer_threads,
            keep_last=c.keep_last,
            permanent_every=c.permanent_interval_steps,
            device=device,
            faults=faults,
            emit=emit,
            log=log,
        )

    # ------------------------------------------------------------ trainer hooks
    def save(
        self,
        step: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        trainer_state: dict[str, Any],
        marker: dict[str, Any],
    ) -> None:
        """Collective (every rank, same step). Returns once the save is under way (async)
        or done (sync); a previous save still in flight is waited for first."""
        t0 = time.monotonic()
        self.wait()
        model_sd, optim_sd = get_state_dict(model, optimizer)
        marker = {
            **marker,
            "async": self.async_save,
            "permanent": is_permanent_step(step, self.permanent_every),
        }
        job = _Job(
            step,
            {"model": model_sd, "optim": optim_sd},
            ckpt.capture_rng(self.device),
            trainer_state,
            marker,
            t0,
        )
        self._job = job
        if not self.async_save:
            self._run(job)
            job.stall_s = time.monotonic() - t0
            self.wait()
            return
        if self._stream is not None:
            job.ready = torch.cuda.Event()
            job.ready.record()
        job.thread = threading.Thread(
            target=self._run, args=(job,), name=f"ckpt-writer-{step}", daemon=True
        )
        job.thread.start()
        job.stall_s = time.monotonic() - t0

    def before_update(self) -> None:
        """Before an optimizer step: the staging copy of an in-flight save must be done."""
        job = self._job
        if job is not None and not job.staged.is_set():
            t0 = time.monotonic()
            job.staged.wait()
            job.stall_s += time.monotonic() - t0

    def poll(self) -> float:
        """At a step boundary: 1.0 when the in-flight save failed (to all-reduce), else 0.0;
        reports a save that finished since the last call."""
        job = self._job
        if job is None or not job.done.is_set():
            return 0.0
        if job.error is not None:
            return 1.0
        self._report(job)
        return 0.0

    def wait(self) -> None:
        """Block until no save is in flight; raise StorageFull / SaveFailed if it failed."""
        job = self._job
        if job is None:
            return
        t0 = time.monotonic()
        job.done.wait()
        if job.thread is not None:
            job.thread.join()  # wholly finished before the caller may tear the groups down
        job.stall_s += time.monotonic() - t0
        if job.error is not None:
            raise job.error
        self._report(job)

    # ------------------------------------------------------------ the writer
    def _report(self, job: _Job) -> None:
        if job.reported:
            return
        job.reported = True
        self.emit(
            CheckpointSaved(
                step=job.step,
                path=str(self.root / step_dir_name(job.step)),
                seconds=job.seconds,
                bytes=job.nbytes,
                stall_s=job.stall_s,
                mode="async" if self.async_save else "sync",
                permanent=job.marker["permanent"],
            )
        )
        self.log(
            f"checkpoint step {job.step}: {self.root / step_dir_name(job.step)} "
            f"({job.seconds:.2f} s, training stalled {job.stall_s:.3f} s"
            f"{', async' if self.async_save else ''})"
        )

    def _agree(self, code: int) -> int:
        t = torch.tensor([code], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.pg)
        return int(t.item())

    def _stage(self, job: _Job) -> dict[str, Any]:
        if not self.async_save:
            return job.state  # training waits: write the live tensors, no copy
        if self._stream is not None:
            torch.cuda.set_device(self.device)  # the current CUDA device is per thread
        if self._buffers is not None:
            try:
                return self._copy(job, self._buffers)
            except Exception:  # another structure (not in this trainer): new buffers
                self._buffers = None
        self._buffers = _create_cpu_state_dict(job.state, pin_memory=self._stream is not None)
        return self._copy(job, self._buffers)

    def _copy(self, job: _Job, buffers: dict[str, Any]) -> dict[str, Any]:
        if self._stream is None:
            return _copy_state_dict(job.state, buffers)
        # A side stream, after the optimizer step that preceded the save: the copy overlaps
        # the next forward/backward on the copy engines.
        self._stream.wait_event(job.ready)
        with torch.cuda.stream(self._stream):
            out = _copy_state_dict(job.state, buffers, non_blocking=True)
        self._stream.synchronize()
        return out

    def _run(self, job: _Job) -> None:
        step, root = job.step, self.root
        err: BaseException | None = None
        code = OK
        needed = torch.tensor([_tensor_bytes(job.state)], dtype=torch.int64)
        try:
            dist.all_reduce(needed, group=self.pg)
            if self.rank == 0:
                try:
                    ckpt.begin(root, step)
                except (Exception, CheckpointException) as e:
                    err = e
            code = self._agree(self._code(err))
            if code == OK:
                staged = self._stage(job)
                job.staged.set()
                writer = dcp.FileSystemWriter(
                    ckpt.tmp_dir(root, step),
                    single_file_per_rank=True,
                    sync_files=True,
                    thread_count=self.writer_threads,
                )
                self._thread_errors.take()
                dcp.save(staged, storage_writer=writer, process_group=self.pg)
                lost = self._thread_errors.take()
                if lost is not None:
                    raise lost
                self.faults.stall_save(step, "mid_write", root)
                ckpt.write_rng(ckpt.tmp_dir(root, step), self.rank, job.rng)
        except (Exception, CheckpointException) as e:
            err = e
        finally:
            job.staged.set()  # the trainer never waits on a save that gave up
        try:
            if code == OK:
                code = self._agree(self._code(err))
            if code == OK and self.rank == 0:
                try:
                    job.nbytes = ckpt.commit(
                        root,
                        step,
                        trainer_state=job.trainer_state,
                        marker=job.marker,
                        faults=self.faults,
                    )
                except (Exception, CheckpointException) as e:
                    err = e
            code = self._agree(self._code(err)) if code == OK else code
            if code == OK and self.rank == 0:
                gone = ckpt.apply_retention(root, self.keep_last, self.permanent_every)
                if gone:
                    self.log(f"retention removed checkpoint(s) of step {gone}")
            if code != OK:
                if self.rank == 0:
                    ckpt.discard(root, step)
                job.error = self._failure(code, err, step, int(needed.item()))
        except (Exception, CheckpointException) as e:  # the agreement failed: a peer is gone
            job.error = SaveFailed(f"checkpoint save of step {step} failed: {first_line(e)}")
            job.error.__cause__ = e
        job.seconds = time.monotonic() - job.t0
        job.state = {}  # drop the references to the live tensors
        job.done.set()

    def _code(self, err: BaseException | None) -> int:
        if err is None:
            return OK
        return NO_SPACE if is_no_space(err, self.root) else FAILED

    def _failure(
        self, code: int, err: BaseException | None, step: int, needed: int
    ) -> BaseException:
        if code == NO_SPACE:
            out: BaseException = StorageFull(no_space_line(self.root, step, needed))
        elif err is None:
            out = SaveFailed(f"checkpoint save of step {step} failed on another rank")
        else:
            out = SaveFailed(f"checkpoint save of step {step} failed: {first_line(err)}")
        out.__cause__ = err
        return out
