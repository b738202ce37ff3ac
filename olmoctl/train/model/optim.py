"""AdamW (one decayed group, or the embedding in a group of its own without weight decay),
the learning-rate schedule (linear warmup, then linear/cosine decay to a floor or constant)
and global-norm gradient clipping with an optional warmup of the threshold.

The schedule and the clipping threshold are pure functions of the step, set before every
step, so a resumed run needs nothing but the step to continue it exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from olmoctl.schemas.recipe import OptimConfig, ScheduleConfig


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """AdamW's parameter groups. OLMo has no biases and no norm weights, so its
    decay_norm_and_bias has nothing to act on; decay_embeddings=false puts the embedding in
    a second group with weight_decay 0, as OLMo's get_param_groups does (optim.py:584-626 at
    allenai/OLMo@15af6688). With decay_embeddings (the default) there is one group, as
    before the option existed, so old checkpoints and the tiny reference losses stand."""
    if cfg.decay_embeddings:
        return [{"params": list(model.parameters())}]
    # The weights of nn.Embedding modules (OLMo: wte, and with weight tying the output
    # head, which is the same tensor), by identity: names change under wrappers.
    emb = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    decay = [p for p in model.parameters() if id(p) not in emb]
    no_decay = [p for p in model.parameters() if id(p) in emb]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        param_groups(model, cfg),
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        foreach=True,
    )


def lr_at(step: int, peak: float, sched: ScheduleConfig, total_steps: int) -> float:
    """Learning rate for optimizer step `step` (0-based); the decay ends at
    schedule.decay_steps when set (OLMo's t_max), else at the run's last step."""
    if step < sched.warmup_steps:
        start = sched.warmup_start_ratio
        if start == 0:
            return peak * (step + 1) / sched.warmup_steps  # as before the option: bitwise
        # OLMo: initial_lr * (0.1 + 0.9 * min(step, W) / W) (optim.py:479-480 at
        # allenai/OLMo@15af6688), its step 1-based like step + 1 here.
        return peak * (start + (1.0 - start) * (step + 1) / sched.warmup_steps)
    if sched.decay == "constant":
        return peak
    floor = peak * sched.final_lr_ratio
    end = total_steps if sched.decay_steps is None else sched.decay_steps
    span = max(1, end - sched.warmup_steps)
    progress = min(1.0, (step - sched.warmup_steps) / span)
    if sched.decay == "linear":
        return peak - (peak - floor) * progress
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_at(step: int, cfg: OptimConfig) -> float:
    """Gradient-clipping threshold for optimizer step `step` (0-based): grad_clip x
    clip_warmup_factor for the first clip_warmup_steps steps, then grad_clip (0: off).

    OLMo (optim.py:454-467 at allenai/OLMo@15af6688) uses the factor while its 1-based step
    is <= grad_clip_warmup_steps, i.e. 0-based steps < clip_warmup_steps, as here. Its
    trainer sets the group's threshold after clipping (train.py:620-636), so there each
    value takes effect one step late (step 1 clips at the plain threshold); here the
    threshold belongs to the step that uses it."""
    if step < cfg.clip_warmup_steps:
        return cfg.grad_clip * cfg.clip_warmup_factor
    return cfg.grad_clip


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
