"""Stragglers: each rank times its own compute, and every log interval rank 0 writes the
slowest rank, its node and its ratio to the median into events (`straggler`).

What is timed is the work a rank does alone: each block's forward (between FSDP's
all-gather, which runs before our pre-hook, and the block's end) and the optimizer step
(after the gradient reductions). Only training compute counts: a block's forward in eval
mode (olmoctl.train.observe.evaluate runs model.eval() under no_grad) is not timed, so an eval in a
log interval does not make a rank look slow. A step's wall time says nothing here: FSDP's
collectives make every rank wait for the slowest, so all ranks would read the same. On a
GPU the intervals are CUDA events on the compute stream, read after one device sync per
report.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import torch
import torch.distributed as dist

from olmoctl.schemas.events import Straggler
from olmoctl.train.observe.events import EventLog

# Resolve finished CUDA event pairs once this many pile up (a long log interval).
_PENDING_MAX = 4096


def node_name() -> str:
    """This rank's node as the scheduler names it (srun sets SLURMD_NODENAME)."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def slowest(seconds: list[float], nodes: list[str], step: int) -> Straggler | None:
    """The straggler event for one interval's per-rank compute seconds per step (rank order);
    None with fewer than two ranks or nothing measured. The ratio is to the median of the
    OTHER ranks: with the slowest one counted, two ranks could never differ by more than 2x."""
    if len(seconds) < 2 or len(nodes) != len(seconds) or max(seconds) <= 0:
        return None
    order = sorted(range(len(seconds)), key=lambda r: (-seconds[r], r))
    top = order[0]
    median = _median([seconds[r] for r in order[1:]])
    return Straggler(
        step=step,
        rank=top,
        node=nodes[top],
        seconds=seconds[top],
        median_s=median,
        ratio=seconds[top] / median if median > 0 else None,
        world_size=len(seconds),
        slowest=[{"rank": r, "node": nodes[r], "seconds": seconds[r]} for r in order[:3]],
    )


def _median(values: list[float]) -> float:
    ranked = sorted(values)
    mid = len(ranked) // 2
    return ranked[mid] if len(ranked) % 2 else (ranked[mid - 1] + ranked[mid]) / 2


def _training(owner: Any) -> bool:
    """Whether a hook's owner is training compute: a module in train mode, or the optimizer
    (which has no mode)."""
    return bool(getattr(owner, "training", True))


class StepTimes:
    """Hooks on the model's blocks and the optimizer; `report(step)` at each log interval
    (a collective: every rank calls it at the same step). Inert with one rank."""

    def __init__(self, model: torch.nn.Module, optimizer: Any, device: torch.device) -> None:
        self.device = device
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.cuda = device.type == "cuda"
        self.seconds = 0.0  # resolved compute time of this interval
        self.steps = 0
        self.pending: list[tuple[Any, Any]] = []  # CUDA event pairs not yet read
        self.open: dict[int, Any] = {}  # module id -> start (time or event)
        self.nodes: list[str] | None = None
        if self.world < 2:
            return
        for block in getattr(model, "blocks", None) or [model]:
            block.register_forward_pre_hook(self._begin(id(block)))
            block.register_forward_hook(self._end(id(block)))
        optimizer.register_step_pre_hook(self._begin(id(optimizer)))
        optimizer.register_step_post_hook(self._end(id(optimizer), step=True))

    def _mark(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def _begin(self, key: int) -> Any:
        @torch.compiler.disable
        def hook(owner: Any, *_: Any) -> None:
            if _training(owner):
                self.open[key] = self._mark()

        return hook

    def _end(self, key: int, step: bool = False) -> Any:
        @torch.compiler.disable
        def hook(owner: Any, *_: Any) -> None:
            if not _training(owner):
                return
            start = self.open.pop(key, None)
            if start is not None:
                end = self._mark()
                if self.cuda:
                    self.pending.append((start, end))
                    if len(self.pending) > _PENDING_MAX:
                        self._resolve(only_done=True)
                else:
                    self.seconds += end - start
            self.steps += step

        return hook

    def _resolve(self, only_done: bool = False) -> None:
        keep = []
        for start, end in self.pending:
            if only_done and not end.query():
                keep.append((start, end))
            else:
                self.seconds += start.elapsed_time(end) / 1000.0
        self.pending = keep

    def report(self, step: int, events: EventLog) -> Straggler | None:
        """All-gather each rank's compute seconds per step of this interval; rank 0 writes
        the straggler event. Returns it on rank 0."""
        if self.world < 2:
            return None
        if self.nodes is None:
            nodes: list[Any] = [None] * self.world
            dist.all_gather_object(nodes, node_name())
            self.nodes = [str(n) for n in nodes]
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self._resolve()
        mine = self.seconds / self.steps if self.steps else 0.0
        self.seconds, self.steps = 0.0, 0
        out = [torch.zeros(1, dtype=torch.float64, device=self.device) for _ in range(self.world)]
        dist.all_gather(out, torch.tensor([mine], dtype=torch.float64, device=self.device))
        if dist.get_rank() != 0:
            return None
        ev = slowest([float(t.item()) for t in out], self.nodes, step)
        if ev is not None:
            events.emit(ev)
        return ev
