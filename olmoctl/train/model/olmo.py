"""The OLMo architecture (Groeneveld et al. 2024): pre-norm blocks, non-parametric
LayerNorm, SwiGLU MLP, rotary position embeddings, no biases, optional weight tying,
attention through torch's scaled_dot_product_attention.

Parallelism lives in parallelize.py (torchtitan's split): this module is plain PyTorch.
Speed settings (compile, attention kernel, loss kind) are applied by fastpath.py.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from olmoctl.schemas.recipe import ModelConfig
from olmoctl.train.model.loss import chunked_loss, plain_loss


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Non-parametric LayerNorm (no weight, no bias). F.layer_norm computes in fp32 for
    bf16/fp16 input (and rounds once on output), so no fp32 copy of x is made; fp32 input
    is unchanged from the old `F.layer_norm(x.float()).type_as(x)`."""
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


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
    """x: (..., T, D). GPT-NeoX style rotate-half, as in OLMo, in fp32 (one upcast of x)."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat([-x2, x1], dim=-1) * sin).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.att_proj = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.attn_out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        # (3, B, H, T, hd): q and k rotated together (one upcast, one kernel chain).
        qkv = self.att_proj(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        qk = apply_rotary(qkv[:2], cos, sin)
        y = F.scaled_dot_product_attention(qk[0], qk[1], qkv[2], is_causal=True)
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
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.eps = cfg.layer_norm_eps
        self.attn = Attention(cfg)
        self.mlp = SwiGLU(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # The rotary tables come in as arguments: a compiled block then sees only tensors
        # and its own parameters, so one graph serves every block (no per-block recompile).
        x = x + self.attn(layer_norm(x, self.eps), cos, sin)
        return x + self.mlp(layer_norm(x, self.eps))


class OLMo(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.rotary = Rotary(cfg.d_model // cfg.n_heads, cfg.rope_theta)
        self.wte = nn.Embedding(cfg.embedding_size, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.lm_head = (
            None if cfg.weight_tying else nn.Linear(cfg.d_model, cfg.embedding_size, bias=False)
        )
        # Set by parallelize.apply_activation_checkpointing; kept here so parameter names
        # (and so checkpoints) are the same with and without it.
        self.activation_checkpointing = False
        # Set by fastpath.configure: the SDPA backend context (also around AC recompute),
        # and the loss kind.
        self.attention_context: Callable[[], Any] = contextlib.nullcontext
        self.cross_entropy = "plain"
        self.ce_chunk_tokens = 4096
        self.ce_rows: Callable[..., Any] | None = None  # compiled loss math, with compile on

    def forward(
        self, tokens: torch.Tensor, *, loss: bool = False, divide_by: int = 1
    ) -> torch.Tensor:
        """tokens (B, T) -> logits (B, T, embedding_size); with loss=True, the mean
        next-token cross entropy / divide_by instead (the logits never leave this call, so
        under FSDP2 the head's weight is still gathered when the chunked loss reads it)."""
        x = self.wte(tokens)
        cos, sin = self.rotary.tables(tokens.shape[1], x.device)
        ctx = self.attention_context
        with ctx():
            for block in self.blocks:
                if self.activation_checkpointing and self.training:
                    x = torch.utils.checkpoint.checkpoint(
                        block, x, cos, sin, use_reentrant=False, context_fn=lambda: (ctx(), ctx())
                    )
                else:
                    x = block(x, cos, sin)
        x = layer_norm(x, self.cfg.layer_norm_eps)
        head = self.wte.weight if self.lm_head is None else self.lm_head.weight
        if loss and self.cross_entropy == "chunked":
            chunk, rows_fn = self.ce_chunk_tokens, self.ce_rows
            return chunked_loss(x, head, tokens, divide_by=divide_by, chunk=chunk, rows_fn=rows_fn)
        logits = F.linear(x, head)
        return plain_loss(logits, tokens) / divide_by if loss else logits

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """model.init "normal": Normal(0, init_std), output projections scaled by
        1/sqrt(2 n_layers); "mitchell": truncated normal (see init_stds).

        Each parameter's full tensor comes from its own generator (seed, parameter index),
        and each rank keeps its shard of it, so the initial model is the same whatever the
        world size or sharding (works on meta-initialized, to_empty'd, FSDP2-sharded params).
        """
        stds = self.init_stds()
        truncate = self.cfg.init == "mitchell"
        for i, param in enumerate(self.parameters()):
            local = param.to_local() if hasattr(param, "to_local") else param
            device = local.device
            gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + i)
            s = stds[id(param)]
            full = torch.empty(param.shape, device=device, dtype=torch.float32)
            if truncate:
                nn.init.trunc_normal_(full, 0.0, s, -3 * s, 3 * s, generator=gen)
            else:
                full.normal_(0.0, s, generator=gen)
            if local is not param:
                full = _local_shard(full, param)
            local.copy_(full.to(local.dtype))

    def init_stds(self) -> dict[int, float]:
        """Each parameter's init std, by id(parameter).

        "mitchell" is OLMo's init_fn "mitchell" (allenai/OLMo@15af6688, the released
        configs' init: OLMo-1B.yaml:36, OLMo-7B.yaml:37): initialization.py:46-50 draws
        trunc_normal(0, std, -3 std, +3 std) with std = 1/sqrt(d), d the fan-in given by
        model.py, divided by sqrt(2 (layer_id + 1)) where a layer id is passed. model.py
        passes d = d_model and no layer for wte, the output head (1097-1114), att_proj and
        ff_proj (651-661); the layer for attn_out (d = d_model) and ff_out (d = its fan-in,
        the SwiGLU width; 470-487).
        """
        cfg = self.cfg
        out: dict[int, float] = {}
        if cfg.init == "normal":
            std = cfg.init_std
            out_std = std / math.sqrt(2 * cfg.n_layers)
            for p in self.parameters():
                out[id(p)] = std
            for block in self.blocks:
                out[id(block.attn.attn_out.weight)] = out_std
                out[id(block.mlp.ff_out.weight)] = out_std
            return out
        base = 1.0 / math.sqrt(cfg.d_model)
        for p in self.parameters():  # wte, the output head, att_proj, ff_proj
            out[id(p)] = base
        for layer, block in enumerate(self.blocks):
            depth = math.sqrt(2 * (layer + 1))
            out[id(block.attn.attn_out.weight)] = base / depth
            out[id(block.mlp.ff_out.weight)] = 1.0 / math.sqrt(cfg.mlp_hidden) / depth
        return out


def _local_shard(full: torch.Tensor, dtensor: torch.Tensor) -> torch.Tensor:
    """This rank's piece of a full tensor laid out like `dtensor` (a DTensor)."""
    from torch.distributed.tensor import distribute_tensor

    piece = distribute_tensor(
        full, dtensor.device_mesh, dtensor.placements, src_data_rank=None
    ).to_local()
    return piece


loss_fn = plain_loss  # the name benchmarks and tests import


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token: the recipe schema's formula (shared with `olmoctl plan`)."""
    return float(cfg.flops_per_token(seq_len))
