"""The speed settings of a run, resolved for its device and applied to the model:
`train.compile` (auto: on a GPU only), `train.attention` (SDPA backend order on a GPU),
`train.cross_entropy` (chunked or plain loss). FSDP2 prefetch lives in parallelize.py.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch

from olmoctl.schemas.recipe import TrainConfig
from olmoctl.train.model import loss as loss_mod
from olmoctl.train.model.olmo import OLMo


@dataclass(frozen=True)
class Settings:
    compile: bool
    attention: list[str] | None  # SDPA backends in priority order; None: torch's choice
    cross_entropy: str


def compile_enabled(setting: bool | str, device_type: str) -> bool:
    """Auto compiles on a GPU (CUDA or ROCm): measured on an H200, the 1B went from 52.8k
    to 68k tokens/s. On CPU compiling costs more than it saves at test sizes."""
    if setting == "auto":
        return device_type == "cuda"
    return bool(setting)


def attention_order(setting: str, device_type: str) -> list[str] | None:
    """SDPA backends to try, fastest first, or None for torch's own order (CPU, ROCm)."""
    if setting != "auto":  # the named kernel, math where it cannot serve a call
        return list(dict.fromkeys([setting, "math"]))
    if device_type != "cuda" or getattr(torch.version, "hip", None):
        return None
    major, minor = torch.cuda.get_device_capability()
    # cuDNN's attention beats flash on H100/H200 (and B200) training shapes (1.7-2.3x
    # reported for Hopper), and loses on Ampere/Ada: data-centre Hopper/Blackwell only.
    if major in (9, 10) and minor == 0:
        return ["cudnn", "flash", "efficient", "math"]
    return ["flash", "efficient", "cudnn", "math"]


def resolve(train: TrainConfig, device_type: str) -> Settings:
    return Settings(
        compile=compile_enabled(train.compile, device_type),
        attention=attention_order(train.attention, device_type),
        cross_entropy=train.cross_entropy,
    )


_BACKENDS = {
    "cudnn": "CUDNN_ATTENTION",
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "math": "MATH",
}


def sdpa_context(order: list[str]) -> Any:
    """A factory of `sdpa_kernel(order)` contexts, in priority order where torch can
    (set_priority, torch >= 2.6), else as the allowed set."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [getattr(SDPBackend, _BACKENDS[name]) for name in order]
    if "set_priority" in inspect.signature(sdpa_kernel).parameters:
        return functools.partial(sdpa_kernel, backends, set_priority=True)
    return functools.partial(sdpa_kernel, backends)


def compile_blocks(model: OLMo, backend: str = "inductor") -> None:
    """torch.compile each block in place. All blocks run the same code on tensors of the
    same shapes (the rotary tables are arguments), so dynamo builds one graph and reuses it
    for every block (tests/train/test_fastpath.py counts the frames)."""
    for block in model.blocks:
        block.compile(backend=backend)
    model.ce_rows = loss_mod.compiled_rows(backend)


def configure(
    model: OLMo, train: TrainConfig, device_type: str, *, backend: str = "inductor"
) -> Settings:
    """Apply the resolved settings to a model (before or after FSDP2; on meta is fine)."""
    s = resolve(train, device_type)
    model.cross_entropy = s.cross_entropy
    model.ce_chunk_tokens = train.ce_chunk_tokens
    if s.attention is not None:
        model.attention_context = sdpa_context(s.attention)
    if s.compile:
        compile_blocks(model, backend)
    return s
