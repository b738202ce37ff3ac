"""The training loop: data, model, optimizer, checkpoint resume, gradient accumulation,
clipping, metrics, signal-safe stop at a step boundary."""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from olmoctl.errors import UsageError
from olmoctl.schemas.contract import INDICES_FILE, SYNTHETIC_FILE, checkpoints_root
from olmoctl.schemas.events import Started, Step
from olmoctl.train.checkpoint import dcp as ckpt
from olmoctl.train.checkpoint.async_save import Saver
from olmoctl.train.data.tokens import (
    BatchLoader,
    TokenDataset,
    resolve_paths,
    write_global_indices,
    write_synthetic,
)
from olmoctl.train.model.fastpath import configure
from olmoctl.train.model.olmo import OLMo, flops_per_token
from olmoctl.train.model.optim import build_optimizer, clip_at, clip_grad_norm, lr_at, set_lr
from olmoctl.train.model.parallelize import parallelize, set_gradient_sync
from olmoctl.train.observe.evaluate import build_evaluator
from olmoctl.train.observe.events import EventLog
from olmoctl.train.observe.stragglers import StepTimes
from olmoctl.train.runtime.config import JobConfig
from olmoctl.train.runtime.distributed import DistEnv
from olmoctl.train.runtime.exit_codes import EXIT_COMPLETED, EXIT_REQUEUE
from olmoctl.train.runtime.faults import Faults
from olmoctl.train.runtime.signals import StopFlag


@dataclass(frozen=True)
class Result:
    reason: str  # completed | preempted
    exit_status: int
    step: int
    signal: str | None = None


def rank0_then_share(fn: Callable[[], Any]) -> None:
    """Run fn on rank 0 only; a UsageError there is raised on every rank (no rank is left
    waiting in a barrier for a rank that gave up)."""
    err = [None]
    if dist.get_rank() == 0:
        try:
            fn()
        except UsageError as e:
            err = [str(e)]
    dist.broadcast_object_list(err, src=0)
    if err[0] is not None:
        raise UsageError(err[0])


def log(msg: str) -> None:
    print(f"[rank {dist.get_rank() if dist.is_initialized() else 0}] {msg}", flush=True)


class Trainer:
    def __init__(
        self,
        job: JobConfig,
        denv: DistEnv,
        device: torch.device,
        events: EventLog,
        stop: StopFlag,
        faults: Faults,
        on_signal: Callable[[str], None] = lambda sig: None,
    ) -> None:
        self.job, self.denv, self.device = job, denv, device
        self.events, self.stop, self.faults, self.on_signal = events, stop, faults, on_signal
        self.recipe = job.recipe
        self.step = 0
        self.finished = False  # run() returned normally (completed or preempted)
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.total_steps = self.recipe.train.total_steps
        self.ckpt_root = checkpoints_root(job.run_dir)

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        r, t = self.recipe, self.recipe.train
        per_step = self.world * t.micro_batch_size
        if t.global_batch_size % per_step:
            raise UsageError(
                f"train.global_batch_size ({t.global_batch_size}) is not divisible by world "
                f"size x train.micro_batch_size ({self.world} x {t.micro_batch_size} = "
                f"{per_step})"
            )
        self.accum = t.global_batch_size // per_step
        run_dir = self.job.run_dir
        if self.rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
        if r.data.paths:
            paths = resolve_paths(
                r.data.paths, self.job.cluster.data_root if self.job.cluster else ""
            )
        else:
            paths = [run_dir / SYNTHETIC_FILE]
            rank0_then_share(lambda: write_synthetic(run_dir))
        dist.barrier()
        self.dataset = TokenDataset(paths, r.data.dtype, t.seq_len)
        self.dataset.check_vocab(r.model.vocab_size)
        if self.dataset.num_instances < t.global_batch_size:
            raise UsageError(
                f"the data holds {self.dataset.num_instances} instances of train.seq_len "
                f"{t.seq_len}, fewer than one global batch ({t.global_batch_size})"
            )
        needed = self.total_steps * t.global_batch_size
        held = r.eval.held_out_fraction if r.eval else 0.0
        rank0_then_share(lambda: write_global_indices(run_dir, self.dataset, needed, t.seed, held))
        indices = np.load(run_dir / INDICES_FILE, mmap_mode="r")
        self.loader = BatchLoader(self.dataset, indices, t.global_batch_size, self.rank, self.world)
        self.evaluator = build_evaluator(self)  # olmoctl.train.observe.evaluate: eval sets checked

        self.expected = {
            "model_hash": ckpt.model_hash(r.model),
            "model": r.model.model_dump(mode="json"),
            "config_hash": ckpt.config_hash(r.model_dump(mode="json")),
            "global_batch_size": t.global_batch_size,
            "seq_len": t.seq_len,
            "seed": t.seed,
        }
        found = [ckpt.newest_complete(self.ckpt_root) if self.rank == 0 else None]
        dist.broadcast_object_list(found, src=0)
        self.resume_from: ckpt.CheckpointInfo | None = found[0]
        if self.resume_from is not None:
            ckpt.check_compatible(self.resume_from, self.expected)

        torch.manual_seed(t.seed)
        with torch.device("meta"):
            model = OLMo(r.model)
        # One CPU process needs no sharding: FSDP2 on a world of 1 only adds copies. GPUs
        # always go through FSDP2, which also applies the bf16 mixed-precision policy.
        self.fsdp = self.world > 1 or self.device.type != "cpu"
        self.speed = configure(model, t, self.device.type)
        if self.fsdp:
            parallelize(
                model,
                device_type=self.device.type,
                world_size=self.world,
                local_world_size=self.denv.local_world_size,
                fsdp=r.fsdp,
                precision=t.precision,
            )
        else:
            model.activation_checkpointing = r.fsdp.activation_checkpointing
        model.to_empty(device=self.device)
        model.init_weights(t.seed)
        self.model = model
        self.optimizer = build_optimizer(model, r.optim)
        self.tokens_seen = 0
        if self.resume_from is not None:
            state = ckpt.load(self.resume_from, model, self.optimizer, self.device)
            self.step = int(state["step"])
            self.tokens_seen = int(state["tokens_seen"])
            log(f"resumed from {self.resume_from.path} at step {self.step}")
        self.saver = Saver.for_recipe(
            r.checkpoint, self.ckpt_root, self.device, self.faults, self.events.emit, log
        )

    def started_event(self) -> Started:
        hosts: list[Any] = [None] * self.world
        dist.all_gather_object(hosts, socket.gethostname())
        dev = self.device
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
        t = self.recipe.train
        return Started(
            run=self.job.name,
            job_id=self.denv.job_id,
            attempt=self.denv.attempt,
            launcher=self.denv.launcher,
            nodes=list(dict.fromkeys(hosts)),
            world_size=self.world,
            start_step=self.step,
            total_steps=self.total_steps,
            checkpoint_loaded=str(self.resume_from.path) if self.resume_from else None,
            grad_accum_steps=self.accum,
            tokens_per_step=t.tokens_per_step,
            fsdp=self.fsdp,
            speed=asdict(self.speed),
            versions={
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cuda": torch.version.cuda,
                "rocm": getattr(torch.version, "hip", None),
                "numpy": np.__version__,
            },
            devices={
                "type": dev.type,
                "name": name or dev.type,
                "per_node": self.denv.local_world_size,
                "count": self.world,
            },
            threads=torch.get_num_threads(),
            pid=os.getpid(),
            seed=t.seed,
            **self.provenance(),
        )

    def provenance(self) -> dict[str, Any]:
        """Rank 0: the code this job runs and a bounded fingerprint of the data it read and
        of its global_indices.npy (see olmoctl.provenance); {} on other ranks."""
        if self.rank != 0:
            return {}
        from olmoctl import provenance

        return {
            "code": provenance.code_version(),
            "data": provenance.fingerprint_files(self.dataset.paths),
            "global_indices": provenance.fingerprint_file(self.job.run_dir / INDICES_FILE),
        }

    # ---------------------------------------------------------------- loop
    def save(self) -> None:
        t = self.recipe.train
        state = {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "data_position": {"batch": self.step, "instances": self.step * t.global_batch_size},
            "world_size": self.world,
            "job_id": self.denv.job_id,
            **{k: v for k, v in self.expected.items() if k != "model"},
        }
        marker = {**self.expected, "world_size": self.world, "job_id": self.denv.job_id}
        self.saver.save(self.step, self.model, self.optimizer, trainer_state=state, marker=marker)

    def run(self) -> Result:
        r, t = self.recipe, self.recipe.train
        total, mbs, vocab = self.total_steps, t.micro_batch_size, r.model.vocab_size
        peak = (self.job.cluster.peak_tflops_bf16 if self.job.cluster else 0.0) * 1e12
        fpt = flops_per_token(r.model, t.seq_len)
        model, opt = self.model, self.optimizer
        model.train()
        times = StepTimes(model, opt, self.device)  # each rank's own compute: stragglers
        next_batch = self.loader.local_batch(self.step) if self.step < total else None
        if next_batch is not None:  # the first batch, checked before any step
            bad = float(int(next_batch.max()) >= vocab)
            flag = torch.tensor([bad], device=self.device)
            dist.all_reduce(flag)
            if flag.item():
                self._bad_data(bool(bad))
        interval_t0, interval_tokens, saved_at = time.monotonic(), 0, self.step
        while self.step < total:
            batch = next_batch
            assert batch is not None
            set_lr(opt, lr_at(self.step, r.optim.lr, r.schedule, total))
            loss_sum = torch.zeros((), device=self.device)
            for m in range(self.accum):
                mb = torch.from_numpy(batch[m * mbs : (m + 1) * mbs]).to(
                    self.device, non_blocking=True
                )
                if self.accum > 1:
                    set_gradient_sync(model, m == self.accum - 1)
                loss = model(mb, loss=True, divide_by=self.accum)
                loss.backward()
                loss_sum += loss.detach()
            grad_norm = clip_grad_norm(model, clip_at(self.step, r.optim))
            self.saver.before_update()  # an async save's copy is done before params change
            opt.step()
            opt.zero_grad(set_to_none=True)
            self.step += 1
            self.tokens_seen += t.tokens_per_step
            interval_tokens += t.tokens_per_step
            self.faults.pause_after_step(self.step, self.rank)
            self.faults.raise_after_step(self.step)

            bad = 0.0
            if self.step < total:
                next_batch = self.loader.local_batch(self.step)
                bad = float(int(next_batch.max()) >= vocab)
            usr2 = float(self.stop.name == "SIGUSR2")
            term = float(self.stop.name == "SIGTERM")
            save_failed = self.saver.poll()
            # One small all-reduce per step: mean loss, bad next batch, signals on any rank,
            # a failed background save on any rank.
            flags = (bad, usr2, term, save_failed)
            stats = torch.stack(
                [loss_sum.float(), *(torch.tensor(v, device=self.device) for v in flags)]
            )
            dist.all_reduce(stats)
            loss_v, any_bad, any_usr2, any_term, any_save_failed = stats.tolist()
            if any_save_failed:
                self.saver.wait()  # raises the save's error on every rank, at this step
            loss_v /= self.world

            if self.step % t.log_interval == 0 or self.step == total:
                elapsed = max(time.monotonic() - interval_t0, 1e-9)
                tps = interval_tokens / elapsed
                lr = opt.param_groups[0]["lr"]
                gn = float(grad_norm.item())
                mfu = fpt * tps / (peak * self.world) if peak > 0 else None
                self.events.emit(
                    Step(
                        step=self.step,
                        loss=loss_v,
                        lr=lr,
                        grad_norm=gn,
                        tokens_per_s=tps,
                        mfu=mfu,
                        tokens_seen=self.tokens_seen,
                    )
                )
                times.report(self.step, self.events)  # collective: the slowest rank -> events
                if self.rank == 0:
                    print(
                        f"step {self.step}/{total} loss {loss_v:.4f} lr {lr:.3e} "
                        f"grad_norm {gn:.3f} tokens/s {tps:,.0f}",
                        flush=True,
                    )
                interval_t0, interval_tokens = time.monotonic(), 0
            if any_bad:
                self._bad_data(bool(bad))
            # Before any save or stop at this step: a checkpoint at S always follows S's eval.
            if self.evaluator is not None and self.evaluator.due(self.step):
                interval_t0 += self.evaluator.run(model, self.step)  # not in tokens/s

            # Decided from the all-reduced flags only, so every rank stops at the same step
            # (a signal landing after the all-reduce is seen at the next boundary).
            stop_sig = "SIGUSR2" if any_usr2 else "SIGTERM" if any_term else None
            if stop_sig and self.step < total:
                self.on_signal(stop_sig)
                if saved_at != self.step:
                    self.save()
                self.saver.wait()  # the signal's save is complete before the exit
                self.finished = True
                return Result("preempted", EXIT_REQUEUE, self.step, stop_sig)
            if self.step % r.checkpoint.interval_steps == 0 or self.step == total:
                self.save()
                saved_at = self.step
                interval_t0 = time.monotonic()
        self.saver.wait()  # the final save is complete before the exit
        self.finished = True
        return Result("completed", EXIT_COMPLETED, self.step)

    def _bad_data(self, mine: bool) -> None:
        vocab = self.recipe.model.vocab_size
        where = f"the batch of step {self.step + 1}"
        if mine:
            ids = self.loader.global_indices(self.step)
            rows = self.loader.local_batch(self.step)
            row = int(np.argmax(rows.max(axis=1) >= vocab))
            inst = int(ids[self.rank * self.loader.per_rank + row])
            f = int(np.searchsorted(self.dataset.offsets, inst, side="right") - 1)
            raise UsageError(
                f"data file {self.dataset.paths[f]}: token id {int(rows[row].max())} in "
                f"instance {inst - int(self.dataset.offsets[f])} ({where}) is not below "
                f"model.vocab_size ({vocab})"
            )
        raise UsageError(f"a token id in {where} is not below model.vocab_size ({vocab})")
