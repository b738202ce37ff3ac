"""AdamW, the learning-rate schedule (linear warmup, then linear/cosine decay to a floor or
constant) and global-norm gradient clipping.

The schedule is a pure function of the step, set on the optimizer before every step, so a
resumed run needs nothing but the step to continue it exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from olmoctl.schemas.recipe import OptimConfig, ScheduleConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    # OLMo has no biases and no norm weights: every parameter is a matrix and is decayed.
    return torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        foreach=True,
    )


def lr_at(step: int, peak: float, sched: ScheduleConfig, total_steps: int) -> float:
    """Learning rate for optimizer step `step` (0-based)."""
    if step < sched.warmup_steps:
        return peak * (step + 1) / sched.warmup_steps
    if sched.decay == "constant":
        return peak
    floor = peak * sched.final_lr_ratio
    span = max(1, total_steps - sched.warmup_steps)
    progress = min(1.0, (step - sched.warmup_steps) / span)
    if sched.decay == "linear":
        return peak - (peak - floor) * progress
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_grad_norm(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Global gradient norm before clipping (0 = no clipping, norm still measured).

    With FSDP2 the gradients are DTensors and the norm is reduced over all shards."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(
        params, max_norm if max_norm > 0 else float("inf"), foreach=True
    )
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return norm
