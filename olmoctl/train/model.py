"""The OLMo architecture (Groeneveld et al. 2024): pre-norm blocks, non-parametric
LayerNorm, SwiGLU MLP, rotary position embeddings, no biases, optional weight tying,
attention through torch's scaled_dot_product_attention.

Parallelism lives in parallelize.py (torchtitan's split): this module is plain PyTorch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from olmoctl.schemas.recipe import ModelConfig


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Non-parametric LayerNorm (no weight, no bias), computed in fp32."""
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps).type_as(x)


class Rotary:
    """cos/sin tables for RoPE, cached per (device, length); not module state, so meta-device
    construction, FSDP and checkpoints never see them."""

    def __init__(self, head_dim: int, theta: float) -> None:
        self.head_dim = head_dim
        self.theta = theta
        self._cache: dict[tuple[torch.device, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, seq_len)
        if key not in self._cache:
            inv = 1.0 / (
                self.theta
                ** (
                    torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32)
                    / self.head_dim
                )
            )
            freqs = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv)
            emb = torch.cat([freqs, freqs], dim=-1)
            self._cache[key] = (emb.cos(), emb.sin())
        return self._cache[key]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, T, D). GPT-NeoX style rotate-half, as in OLMo."""
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated * sin).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, rotary: Rotary) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.att_proj = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.attn_out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.rotary = rotary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.att_proj(x).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        cos, sin = self.rotary.tables(t, x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.attn_out(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ff_proj = nn.Linear(cfg.d_model, 2 * cfg.mlp_hidden, bias=False)
        self.ff_out = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.ff_proj(x).chunk(2, dim=-1)
        return self.ff_out(F.silu(gate) * x)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, rotary: Rotary) -> None:
        super().__init__()
        self.eps = cfg.layer_norm_eps
        self.attn = Attention(cfg, rotary)
        self.mlp = SwiGLU(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(layer_norm(x, self.eps))
        return x + self.mlp(layer_norm(x, self.eps))


class OLMo(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        rotary = Rotary(cfg.d_model // cfg.n_heads, cfg.rope_theta)
        self.wte = nn.Embedding(cfg.embedding_size, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg, rotary) for _ in range(cfg.n_layers)])
        self.lm_head = (
            None if cfg.weight_tying else nn.Linear(cfg.d_model, cfg.embedding_size, bias=False)
        )
        # Set by parallelize.apply_activation_checkpointing; kept here so parameter names
        # (and so checkpoints) are the same with and without it.
        self.activation_checkpointing = False

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> logits (B, T, embedding_size)."""
        x = self.wte(tokens)
        for block in self.blocks:
            if self.activation_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        x = layer_norm(x, self.cfg.layer_norm_eps)
        if self.lm_head is None:
            return F.linear(x, self.wte.weight)
        return self.lm_head(x)

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """Normal(0, init_std) everywhere; output projections scaled by 1/sqrt(2 n_layers).

        Each parameter's full tensor comes from its own generator (seed, parameter index),
        and each rank keeps its shard of it, so the initial model is the same whatever the
        world size or sharding (works on meta-initialized, to_empty'd, FSDP2-sharded params).
        """
        std = self.cfg.init_std
        out_std = std / math.sqrt(2 * self.cfg.n_layers)
        for i, (name, param) in enumerate(self.named_parameters()):
            local = param.to_local() if hasattr(param, "to_local") else param
            device = local.device
            gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + i)
            s = out_std if name.endswith(("attn_out.weight", "ff_out.weight")) else std
            full = torch.empty(param.shape, device=device, dtype=torch.float32)
            full.normal_(0.0, s, generator=gen)
            if local is not param:
                full = _local_shard(full, param)
            local.copy_(full.to(local.dtype))


def _local_shard(full: torch.Tensor, dtensor: torch.Tensor) -> torch.Tensor:
    """This rank's piece of a full tensor laid out like `dtensor` (a DTensor)."""
    from torch.distributed.tensor import distribute_tensor

    piece = distribute_tensor(
        full, dtensor.device_mesh, dtensor.placements, src_data_rank=None
    ).to_local()
    return piece


def loss_fn(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over the T-1 predicted positions, in fp32."""
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="mean"
    )


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token: the recipe schema's formula (shared with `olmoctl plan`)."""
    return float(cfg.flops_per_token(seq_len))
