"""Batch arithmetic: train.global_batch_size counts sequences per optimizer step, and must be
GPUs x train.micro_batch_size x a whole number of gradient-accumulation steps. When it is
not, `batch_problem` says so with the nearest settings that are (the run-spec validator
refuses with it; `plan` warns with it)."""

from __future__ import annotations

import math

# Divisors listed as alternatives in a message, at most.
_SHOWN = 6


def divisors(n: int) -> list[int]:
    """The divisors of n, ascending ([] for n < 1)."""
    if n < 1:
        return []
    low, high = [], []
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            low.append(d)
            if d != n // d:
                high.append(n // d)
    return low + high[::-1]


def _best_micro(per_gpu: int, micro: int) -> int:
    """The largest micro batch <= `micro` that divides `per_gpu` sequences per GPU."""
    return max(d for d in divisors(per_gpu) if d <= micro)


def _alternatives(per_gpu: int, chosen: int) -> str:
    others = [d for d in divisors(per_gpu) if d != chosen][:_SHOWN]
    return f" (or micro batch {', '.join(map(str, others))})" if others else ""


def batch_fixes(
    global_batch: int, micro: int, nodes: int, tasks_per_node: int, max_nodes: int
) -> list[str]:
    """The nearest settings that make the batch whole, as the user would type them: a smaller
    micro batch when the GPUs divide the batch; else the nearest global batches below and
    above that the GPUs divide, each with the largest micro batch up to today's that divides
    the per-GPU share (and the others that would); the nearest keeping today's micro batch;
    and the nearest node counts that keep both."""
    world = nodes * tasks_per_node
    step = world * micro
    out: list[str] = []
    kept: set[int] = set()  # global batches proposed already with today's micro batch
    if global_batch % world == 0:
        per_gpu = global_batch // world
        best = _best_micro(per_gpu, micro)
        out.append(f"-o train.micro_batch_size={best}{_alternatives(per_gpu, best)}")
    else:
        below = global_batch // world * world
        for g in (below, below + world):
            if g < 1:
                continue
            best = _best_micro(g // world, micro)
            if best == micro:
                kept.add(g)
            change = f" -o train.micro_batch_size={best}" if best != micro else ""
            out.append(f"-o train.global_batch_size={g}{change}{_alternatives(g // world, best)}")
    below = global_batch // step * step
    same = [g for g in (below, below + step) if g >= 1 and g not in kept]
    if same:
        out.append(
            f"-o train.global_batch_size={' or '.join(map(str, same))} (micro batch {micro})"
        )
    per_node = tasks_per_node * micro
    if global_batch % per_node == 0:
        ok = [n for n in divisors(global_batch // per_node) if n <= max_nodes]
        near = [
            max((n for n in ok if n < nodes), default=0),
            min((n for n in ok if n > nodes), default=0),
        ]
        if any(near):
            out.append("--nodes " + " or ".join(str(n) for n in near if n))
    return out


def batch_problem(
    global_batch: int, micro: int, nodes: int, tasks_per_node: int, max_nodes: int
) -> str | None:
    """None when the batch divides; else one line naming the numbers and the nearest fixes."""
    world = nodes * tasks_per_node
    step = world * micro
    if global_batch % step == 0:
        return None
    fixes = batch_fixes(global_batch, micro, nodes, tasks_per_node, max_nodes)
    return (
        f"train.global_batch_size ({global_batch} sequences) is not divisible by {world} GPUs x "
        f"train.micro_batch_size {micro} = {step}, so gradient accumulation would not be whole"
        + ("; nearest that divide: " + "; ".join(fixes) if fixes else "")
    )
