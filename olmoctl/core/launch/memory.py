"""GPU memory per device of a training run, and what would make it fit: THE estimate that
`plan` shows and `launch`/`render`/`sweep` check (core/launch/checks.py), so they never
disagree. Pure arithmetic on a recipe and a cluster profile (docs/plan.md, "Memory per GPU").

What is counted, per GPU, at the peak (the forward pass has finished, the loss is computed):
- training state: fp32 parameters, fp32 gradients, AdamW's two fp32 moments (16 bytes per
  parameter), sharded over the FSDP shard group;
- FSDP's unsharded units: the one computing and the `fsdp.prefetch` gathered ahead (at
  least one: FSDP2's implicit prefetch), in the param dtype (on one GPU every block, which
  stays gathered from forward to backward), and one unit's unsharded gradient before its
  reduce-scatter (param dtype, plus the reduce-dtype copy);
- activations, counted tensor by tensor for this trainer's block (train/model/olmo.py) in eager
  mode at the recipe's micro batch and sequence length (torch.compile's partitioner keeps
  the same or less: the count is an upper bound there); with activation checkpointing each
  block keeps only its input and one block is recomputed at a time;
- the output head: with the chunked loss (train/model/loss.py) the hidden-state gradient, the
  head's fp32 gradient and one chunk's logits, log-softmax and gradient; with the plain
  loss the whole logits, their fp32 copy and the saved log-softmax (LOGIT_BYTES per logit);
- RUNTIME_GB for the CUDA/ROCm context, NCCL/RCCL buffers and allocator slack (assumed).
Attention is scaled_dot_product_attention; a fused kernel (flash, memory-efficient, cuDNN)
keeps no T x T scores, only their log-sum-exp; `train.attention: math` keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.batch import divisors

GB = 1e9
# Training state per parameter: fp32 parameters, fp32 gradients, two fp32 AdamW moments.
STATE_BYTES_PER_PARAM = 16
# Checkpoint: fp32 parameters + AdamW's two fp32 moments (sharded, DCP).
CKPT_BYTES_PER_PARAM = 12
# Per logit at the head with the plain loss: bf16 logits, the fp32 copy plain_loss makes
# and the fp32 log-softmax cross_entropy saves (train/model/loss.py); 12 bytes in fp32 as well.
LOGIT_BYTES = 12
# Per logit of one chunk of the chunked loss, besides the logits (a bytes): the fp32
# log-softmax, the fp32 gradient buffer and the fp32 gradient (train/model/loss.py _rows).
CHUNK_LOGIT_BYTES = 12
# CUDA/ROCm context, communication buffers and the caching allocator's slack; assumed.
RUNTIME_GB = 2.0
_DTYPE_BYTES = {"bf16": 2, "fp32": 4}


@dataclass(frozen=True)
class Memory:
    strategy: str
    shard_size: int
    params_gb: float  # fp32, sharded
    grads_gb: float
    optimizer_gb: float
    gathered_gb: float  # unsharded units in flight, and one unit's unsharded gradient
    activations_gb: float  # blocks + output head, at the recipe's micro batch
    activation_checkpointing: bool
    activations_other_gb: float  # the same with activation checkpointing the other way
    runtime_gb: float
    total_gb: float
    gpu_memory_gb: float
    fits: bool
    micro_batch_size: int


def checkpoint_bytes(recipe: Recipe) -> int:
    """Bytes of one checkpoint of `recipe` (model + optimizer state, all ranks together)."""
    return recipe.model.num_params() * CKPT_BYTES_PER_PARAM


def block_activation_bytes_per_token(recipe: Recipe) -> int:
    """Bytes one block keeps for backward, per token, without activation checkpointing.

    Counted on train/model/olmo.py's Block in eager mode, with a = bytes per activation (2 in
    bf16), d = d_model, f = mlp_hidden: LayerNorm x2, its input and output 2ad + mean/rstd
    8; attention: the fused qkv projection 3ad (v is a view of it, so SDPA keeps it whole),
    roped q and k 2ad, SDPA's output ad and its log-sum-exp 4 x heads, the output
    projection's input ad; SwiGLU: the fused up/gate projection 2af (the gate is a view),
    silu(gate) af, the product af. `train.attention: math` adds the softmaxed scores and
    their pre-softmax copy, 2a x heads x seq_len.
    """
    m, t = recipe.model, recipe.train
    a = _DTYPE_BYTES[t.precision]
    d, f = m.d_model, m.mlp_hidden
    norms = 2 * (2 * a * d + 8)
    attention = a * (3 * d + 2 * d + d + d) + 4 * m.n_heads
    if t.attention == "math":
        attention += 2 * a * m.n_heads * t.seq_len
    mlp = a * (2 * f + f + f)
    return norms + attention + mlp


def head_bytes(recipe: Recipe, tokens: int) -> int:
    """The final LayerNorm and the output head with the loss, for `tokens` tokens."""
    m, t = recipe.model, recipe.train
    a = _DTYPE_BYTES[t.precision]
    norm = (a * m.d_model + 8) * tokens  # its input; the output feeds the head
    if t.cross_entropy == "plain":
        return norm + a * m.d_model * tokens + LOGIT_BYTES * m.embedding_size * tokens
    chunk = min(t.ce_chunk_tokens, tokens)
    grad_h = a * m.d_model * tokens  # computed in the forward pass, kept for backward
    grad_w = 4 * m.embedding_size * m.d_model  # the head's gradient, fp32, unsharded
    return norm + grad_h + grad_w + (a + CHUNK_LOGIT_BYTES) * m.embedding_size * chunk


def activation_bytes(recipe: Recipe, *, checkpointing: bool, micro_batch: int) -> int:
    """Activation bytes per GPU at the peak for one micro batch."""
    m, t = recipe.model, recipe.train
    tokens = micro_batch * t.seq_len
    a = _DTYPE_BYTES[t.precision]
    block = block_activation_bytes_per_token(recipe) * tokens
    # With checkpointing each block keeps its input, and backward recomputes one at a time.
    inputs = m.n_layers * a * m.d_model * tokens
    blocks = inputs + block if checkpointing else m.n_layers * block
    return blocks + head_bytes(recipe, tokens)


def estimate(
    recipe: Recipe,
    cluster: ClusterProfile,
    nodes: int,
    *,
    micro_batch: int | None = None,
    checkpointing: bool | None = None,
) -> Memory:
    """Memory per GPU of `recipe` on `nodes` nodes of `cluster` (micro batch and activation
    checkpointing as the recipe says unless given)."""
    fsdp, m = recipe.fsdp, recipe.model
    micro = recipe.train.micro_batch_size if micro_batch is None else micro_batch
    ac = bool(fsdp.activation_checkpointing) if checkpointing is None else checkpointing
    gpus = nodes * cluster.tasks_per_node
    shard = gpus
    if fsdp.strategy == "hybrid":
        shard = min(fsdp.shard_group_size or cluster.tasks_per_node, gpus)
    block = 4 * m.d_model**2 + 3 * m.d_model * m.mlp_hidden
    root = m.embedding_size * m.d_model * (1 if m.weight_tying else 2)
    unit = max(block, root)
    p_bytes = _DTYPE_BYTES[fsdp.param_dtype] if recipe.train.precision == "bf16" else 4
    r_bytes = _DTYPE_BYTES[fsdp.reduce_dtype] if recipe.train.precision == "bf16" else 4
    grad_copy = r_bytes if r_bytes != p_bytes else 0  # the reduce-dtype copy of the gradient
    if gpus == 1:  # one GPU: no block reshards after forward (train/model/parallelize.py)
        gathered = ((m.n_layers * block + root) * p_bytes + unit * (p_bytes + grad_copy)) / GB
    else:
        units = 1 + max(fsdp.prefetch, 1)  # computing + gathered ahead (FSDP2: one at least)
        gathered = unit * (units * p_bytes + p_bytes + grad_copy) / GB
    per = m.num_params() / shard / GB
    acts = activation_bytes(recipe, checkpointing=ac, micro_batch=micro) / GB
    other = activation_bytes(recipe, checkpointing=not ac, micro_batch=micro) / GB
    total = per * STATE_BYTES_PER_PARAM + gathered + acts + RUNTIME_GB
    return Memory(
        strategy=fsdp.strategy,
        shard_size=shard,
        params_gb=4 * per,
        grads_gb=4 * per,
        optimizer_gb=8 * per,
        gathered_gb=gathered,
        activations_gb=acts,
        activation_checkpointing=ac,
        activations_other_gb=other,
        runtime_gb=RUNTIME_GB,
        total_gb=total,
        gpu_memory_gb=cluster.gpu_memory_gb,
        fits=total <= cluster.gpu_memory_gb,
        micro_batch_size=micro,
    )


def checked(cluster: ClusterProfile) -> bool:
    """Whether the profile says enough to check memory (a GPU with a known size)."""
    return cluster.vendor != "cpu" and cluster.gpu_memory_gb > 0


@dataclass(frozen=True)
class Fix:
    """One change that makes the run fit, as the user would type it, and the estimate then."""

    args: str  # e.g. "-o train.micro_batch_size=1" or "--nodes 512"
    total_gb: float


def fixes(recipe: Recipe, cluster: ClusterProfile, nodes: int) -> list[Fix]:
    """The changes that would make the run fit, each checked with the same estimate:
    activation checkpointing (the recipe's fsdp.activation_checkpointing, which
    train/model/parallelize.py applies), the largest smaller micro batch that still divides the
    per-GPU batch (with checkpointing too if that alone is not enough), the fewest more nodes
    that keep the batch whole (full sharding: the state shrinks with the GPUs), and for
    hybrid sharding the smallest larger shard group or full sharding."""
    t, fsdp = recipe.train, recipe.fsdp
    gpus = nodes * cluster.tasks_per_node
    ac_on = bool(fsdp.activation_checkpointing)
    out: list[Fix] = []

    def fit(r: Recipe, n: int = nodes, **kw: Any) -> float | None:
        mem = estimate(r, cluster, n, **kw)
        return mem.total_gb if mem.fits else None

    if not ac_on and (gb := fit(recipe, checkpointing=True)) is not None:
        out.append(Fix(AC_ON, gb))
    per_gpu = t.global_batch_size // gpus if t.global_batch_size % gpus == 0 else 0
    smaller = sorted((d for d in divisors(per_gpu) if d < t.micro_batch_size), reverse=True)
    for ac in dict.fromkeys((ac_on, True)):
        found = next(
            ((mb, gb) for mb in smaller if (gb := fit(recipe, micro_batch=mb, checkpointing=ac))),
            None,
        )
        if found:
            extra = f" {AC_ON}" if ac and not ac_on else ""
            out.append(Fix(f"-o train.micro_batch_size={found[0]}{extra}", found[1]))
            break
    if fsdp.strategy == "full":
        for ac in dict.fromkeys((ac_on, True)):
            more = _more_nodes(recipe, cluster, nodes, ac)
            if more is not None:
                extra = f" {AC_ON}" if ac and not ac_on else ""
                out.append(Fix(f"--nodes {more[0]}{extra}", more[1]))
                break
        return out
    shard = estimate(recipe, cluster, nodes).shard_size
    for g in divisors(gpus):
        if shard < g < gpus and (gb := fit(_fsdp(recipe, shard_group_size=g))) is not None:
            out.append(Fix(f"-o fsdp.shard_group_size={g}", gb))
            break
    if (gb := fit(_fsdp(recipe, strategy="full"))) is not None:
        out.append(Fix("-o fsdp.strategy=full", gb))
    return out


AC_ON = "-o fsdp.activation_checkpointing=true"


def _fsdp(recipe: Recipe, **changes: Any) -> Recipe:
    return recipe.model_copy(update={"fsdp": recipe.fsdp.model_copy(update=changes)})


def _more_nodes(
    recipe: Recipe, cluster: ClusterProfile, nodes: int, checkpointing: bool
) -> tuple[int, float] | None:
    """The fewest nodes above `nodes` (at most the profile's max_nodes) at which the run
    fits and the global batch still divides into GPUs x micro batch."""
    t = recipe.train
    per_node = cluster.tasks_per_node * t.micro_batch_size
    if t.global_batch_size % per_node:
        return None
    for n in divisors(t.global_batch_size // per_node):
        if nodes < n <= cluster.max_nodes:
            mem = estimate(recipe, cluster, n, checkpointing=checkpointing)
            if mem.fits:
                return n, mem.total_gb
    return None
