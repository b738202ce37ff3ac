"""In-loop evaluation (recipe section `eval`): the mean next-token loss of each eval set,
every eval.interval_steps steps and at the last step, into `eval` events.

Eval sets: eval.paths (token files, read like data.paths) and, with
eval.held_out_fraction, "held_out": training instances that global_indices.npy leaves out
(RUN_DIR/held_out_indices.npy, olmoctl.train.data.tokens). A set is its first eval.batches global
batches (train.global_batch_size instances each, in a fixed order); rank r takes the rows
training would give it and runs them in micro-batches, so the result does not depend on the
world size beyond summation order.

Training numerics are untouched: no gradients, the model in eval mode and back, the torch
RNG state forked (the model has no dropout, so this is a guard, not a need), FSDP's
parameters resharded after (a checkpoint may follow at once). At a step that is both an
eval step and a save (or a stop) step, the eval comes first: a checkpoint at step S always
follows S's eval, so a resume from S next evaluates at the following eval step and no eval
is repeated or skipped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist

from olmoctl.errors import UsageError
from olmoctl.schemas.contract import HELD_OUT_FILE
from olmoctl.schemas.events import Eval
from olmoctl.schemas.recipe import HELD_OUT_SET, EvalConfig
from olmoctl.train.data.tokens import TokenDataset, resolve_paths
from olmoctl.train.observe.events import EventLog

if TYPE_CHECKING:
    from olmoctl.train.trainer import Trainer


@dataclass(frozen=True)
class EvalSet:
    name: str
    dataset: TokenDataset
    instances: np.ndarray  # global instance numbers of its dataset, batches x B of them
    batches: int


class Evaluator:
    def __init__(
        self,
        cfg: EvalConfig,
        sets: list[EvalSet],
        *,
        total_steps: int,
        global_batch: int,
        micro_batch: int,
        rank: int,
        world: int,
        device: torch.device,
        events: EventLog,
    ) -> None:
        self.cfg, self.sets, self.total_steps = cfg, sets, total_steps
        self.global_batch, self.micro_batch = global_batch, micro_batch
        self.per_rank = global_batch // world
        self.rank, self.device, self.events = rank, device, events

    def due(self, step: int) -> bool:
        """Whether step `step` (just trained) is an eval step: a function of the step only,
        so every attempt of a run evaluates at the same steps."""
        return step % self.cfg.interval_steps == 0 or step == self.total_steps

    def run(self, model: torch.nn.Module, step: int) -> float:
        """Evaluate every set at `step`; returns the seconds it took (kept out of tokens/s)."""
        t0 = time.monotonic()
        devices = [self.device] if self.device.type == "cuda" else []
        was_training = model.training
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            try:
                for s in self.sets:
                    self._evaluate(model, s, step)
            finally:
                model.train(was_training)
                reshard(model)
        return time.monotonic() - t0

    def _evaluate(self, model: torch.nn.Module, s: EvalSet, step: int) -> None:
        t0 = time.monotonic()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        micro_batches = 0
        b, mbs = self.global_batch, self.micro_batch
        for i in range(s.batches):
            lo = i * b + self.rank * self.per_rank
            rows = s.dataset.gather(s.instances[lo : lo + self.per_rank])
            for m in range(0, self.per_rank, mbs):
                mb = torch.from_numpy(rows[m : m + mbs]).to(self.device, non_blocking=True)
                # Every micro-batch holds the same number of tokens: the mean of the means is
                # the mean over all tokens. The model's own loss path, as training's.
                total += model(mb, loss=True).double()
                micro_batches += 1
        stats = torch.stack(
            [total, torch.tensor(float(micro_batches), dtype=torch.float64, device=self.device)]
        )
        dist.all_reduce(stats)
        loss_sum, count = stats.tolist()
        loss = loss_sum / count
        seconds = time.monotonic() - t0
        self.events.emit(
            Eval(
                step=step,
                name=s.name,
                loss=loss,
                perplexity=math.exp(loss) if loss < 700 else math.inf,
                batches=s.batches,
                tokens=s.batches * b * (s.dataset.seq_len - 1),
                seconds=seconds,
            )
        )
        if self.rank == 0:
            print(
                f"eval step {step} {s.name}: loss {loss:.4f} perplexity "
                f"{math.exp(min(loss, 700)):.3f} ({seconds:.2f} s)",
                flush=True,
            )


def reshard(model: torch.nn.Module) -> None:
    """FSDP2 keeps the root's and the last block's parameters gathered after a forward
    (backward would need them); with no backward, free them now."""
    from torch.distributed.fsdp import FSDPModule

    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.reshard()


def build_evaluator(trainer: Trainer) -> Evaluator | None:
    """The trainer's evaluator (None without an `eval` section). Every rank reads and checks
    the same instances, so a bad eval set stops every rank with the same one-line error."""
    r = trainer.recipe
    cfg, t = r.eval, r.train
    if cfg is None:
        return None
    b = t.global_batch_size
    sets = []
    if cfg.held_out_fraction:
        held = np.load(trainer.job.run_dir / HELD_OUT_FILE, mmap_mode="r")
        sets.append(_eval_set(HELD_OUT_SET, trainer.dataset, held, cfg.batches, b))
    root = trainer.job.cluster.data_root if trainer.job.cluster else ""
    for name, files in cfg.paths.items():
        try:
            ds = TokenDataset(resolve_paths(files, root), r.data.dtype, t.seq_len)
        except UsageError as e:
            raise UsageError(f"eval set {name}: {e}") from None
        sets.append(_eval_set(name, ds, np.arange(ds.num_instances), cfg.batches, b))
    for s in sets:
        _check_vocab(s, r.model.vocab_size, b)
    return Evaluator(
        cfg,
        sets,
        total_steps=trainer.total_steps,
        global_batch=b,
        micro_batch=t.micro_batch_size,
        rank=trainer.rank,
        world=trainer.world,
        device=trainer.device,
        events=trainer.events,
    )


def _eval_set(
    name: str, ds: TokenDataset, instances: np.ndarray, batches: int, global_batch: int
) -> EvalSet:
    n = min(batches, len(instances) // global_batch)
    if n == 0:
        raise UsageError(
            f"eval set {name} holds {len(instances)} instances of train.seq_len "
            f"{ds.seq_len}, fewer than one global batch ({global_batch}); give it more data"
            + (" or raise eval.held_out_fraction" if name == HELD_OUT_SET else "")
        )
    return EvalSet(name, ds, np.asarray(instances[: n * global_batch], dtype=np.int64), n)


def _check_vocab(s: EvalSet, vocab: int, global_batch: int) -> None:
    """Token ids of the instances evaluated, batch by batch (what training checks per step)."""
    for i in range(s.batches):
        ids = s.instances[i * global_batch : (i + 1) * global_batch]
        rows = s.dataset.gather(ids)
        if int(rows.max()) < vocab:
            continue
        row = int(np.argmax(rows.max(axis=1) >= vocab))
        inst = int(ids[row])
        f = int(np.searchsorted(s.dataset.offsets, inst, side="right") - 1)
        raise UsageError(
            f"eval set {s.name}: data file {s.dataset.paths[f]}: token id "
            f"{int(rows[row].max())} in instance {inst - int(s.dataset.offsets[f])} is not "
            f"below model.vocab_size ({vocab})"
        )
