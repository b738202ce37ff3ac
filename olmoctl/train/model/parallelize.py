"""FSDP2 (`fully_shard`) for OLMo: one unit per block plus the root (embeddings, final norm,
output head), full shard over all ranks or hybrid shard on a 2-D mesh
(replicate x shard); bf16 params / fp32 reduce on GPU, fp32 on CPU; optional activation
checkpointing; explicit forward/backward prefetch of `fsdp.prefetch` blocks. Compile is
fastpath.py's (it works the same with and without FSDP2).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from olmoctl.errors import UsageError
from olmoctl.schemas.recipe import FSDPConfig
from olmoctl.train.model.olmo import OLMo

_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def build_mesh(
    device_type: str, world_size: int, local_world_size: int, cfg: FSDPConfig
) -> DeviceMesh:
    if cfg.strategy == "full":
        return init_device_mesh(device_type, (world_size,), mesh_dim_names=("shard",))
    group = cfg.shard_group_size or local_world_size
    if world_size % group:
        raise UsageError(
            f"fsdp.shard_group_size ({group}) does not divide the world size ({world_size})"
        )
    return init_device_mesh(
        device_type, (world_size // group, group), mesh_dim_names=("replicate", "shard")
    )


def mp_policy(device_type: str, precision: str, cfg: FSDPConfig) -> MixedPrecisionPolicy:
    """bf16 compute with fp32 master weights on GPU; plain fp32 on CPU. Forward inputs are
    not cast: activations are bf16 already, and the rotary tables every block receives must
    stay fp32 (casting them would round RoPE's angles to bf16)."""
    if device_type == "cpu" or precision == "fp32":
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(
        param_dtype=_DTYPES[cfg.param_dtype],
        reduce_dtype=_DTYPES[cfg.reduce_dtype],
        cast_forward_inputs=False,
    )


def parallelize(
    model: OLMo,
    *,
    device_type: str,
    world_size: int,
    local_world_size: int,
    fsdp: FSDPConfig,
    precision: str,
) -> OLMo:
    """Apply AC and FSDP2 in place (the model may live on the meta device)."""
    model.activation_checkpointing = fsdp.activation_checkpointing
    mesh = build_mesh(device_type, world_size, local_world_size, fsdp)
    policy = mp_policy(device_type, precision, fsdp)
    n = len(model.blocks)
    for i, block in enumerate(model.blocks):
        # The last block's parameters are needed again at once by backward: keep them. On
        # one GPU a shard is the whole tensor: resharding frees nothing and costs a second
        # all-gather (copy and bf16 cast) per block in backward.
        reshard = world_size > 1 and i < n - 1
        fully_shard(block, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    set_prefetch(list(model.blocks), fsdp.prefetch)
    return model


def set_prefetch(blocks: list[Any], depth: int) -> None:
    """Block i all-gathers blocks i+1..i+depth when its forward starts, and i-1..i-depth
    when its backward starts, so communication overlaps compute even when the CPU does not
    run ahead of the GPU (FSDP2's implicit prefetch relies on it running ahead)."""
    if depth <= 0 or not hasattr(FSDPModule, "set_modules_to_forward_prefetch"):
        return
    for i, block in enumerate(blocks):
        block.set_modules_to_forward_prefetch(blocks[i + 1 : i + 1 + depth])
        block.set_modules_to_backward_prefetch(blocks[max(0, i - depth) : i][::-1])


def set_gradient_sync(model: torch.nn.Module, enabled: bool) -> None:
    """Skip the reduce-scatter on all but the last micro-batch of an accumulation."""
    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(enabled)
