"""A training recipe: model shape, optimizer, schedule, batch, precision, FSDP, checkpoints,
data."""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from olmoctl.schemas.base import Schema
from olmoctl.schemas.bounds import (
    DAY_S,
    DIM_MAX,
    INT64_MAX,
    STEPS_MAX,
    TOKENS_MAX,
    Float,
    Int,
)
from olmoctl.schemas.shellsafe import Name, Text

# Adam's betas: each in [0, 1); 1 never forgets and divides by zero in the bias correction.
Beta = Annotated[Float, Field(ge=0, lt=1)]


class ModelConfig(Schema):
    """The OLMo architecture: pre-norm, non-parametric LayerNorm, SwiGLU, RoPE, no biases."""

    d_model: Int = Field(gt=0, le=DIM_MAX)
    n_layers: Int = Field(gt=0, le=100_000)
    n_heads: Int = Field(gt=0, le=DIM_MAX)
    # Inner width of the SwiGLU MLP (the width after the gate; OLMo's mlp_hidden_size / 2).
    mlp_hidden: Int = Field(gt=0, le=DIM_MAX)
    vocab_size: Int = Field(gt=0, le=2**32)  # uint32 token ids at most
    # Embedding rows, padded up from vocab_size for throughput (OLMo: 50280 -> 50304).
    embedding_size: Int = Field(gt=0, le=2**32)
    max_seq_len: Int = Field(gt=0, le=DIM_MAX)
    weight_tying: bool = False
    rope_theta: Float = Field(default=10_000.0, gt=0, le=1e12)
    layer_norm_eps: Float = Field(default=1e-5, gt=0, le=1)
    # Weight init (train/model/olmo.py): "normal" is Normal(0, init_std), output projections
    # scaled by 1/sqrt(2 n_layers); "mitchell" is OLMo's init_fn "mitchell" (the paper's
    # released configs): truncated normal at +-3 std, std 1/sqrt(fan_in), output projections
    # of block i also divided by sqrt(2 (i + 1)). init_std is unused by "mitchell".
    init: Literal["normal", "mitchell"] = "normal"
    init_std: Float = Field(default=0.02, gt=0, le=10)

    @model_validator(mode="after")
    def _check_shape(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"model.d_model ({self.d_model}) must be divisible by "
                f"model.n_heads ({self.n_heads})"
            )
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("model.d_model / model.n_heads must be even for rotary embeddings")
        if self.embedding_size < self.vocab_size:
            raise ValueError(
                f"model.embedding_size ({self.embedding_size}) must be >= "
                f"model.vocab_size ({self.vocab_size})"
            )
        return self

    def num_params(self, *, embeddings: bool = True) -> int:
        """Parameter count (no biases, non-parametric norms)."""
        d, h = self.d_model, self.mlp_hidden
        per_block = 4 * d * d + 3 * d * h  # q,k,v,o + SwiGLU (gate, up, down)
        total = self.n_layers * per_block
        if embeddings:
            total += self.embedding_size * d * (1 if self.weight_tying else 2)
        return total

    def matmul_params(self) -> int:
        """The N of 6N: weights used in matrix multiplies, i.e. the blocks and the output
        projection (the input embedding is a lookup)."""
        return self.num_params(embeddings=False) + self.embedding_size * self.d_model

    def attention_flops_per_token(self, seq_len: int) -> int:
        """12 x layers x d_model x seq_len (PaLM, appendix B): QK^T and AV, fwd + bwd."""
        return 12 * self.n_layers * self.d_model * seq_len

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token (forward + backward), as `plan` and the job's MFU use."""
        return 6 * self.matmul_params() + self.attention_flops_per_token(seq_len)


class OptimConfig(Schema):
    name: Literal["adamw"] = "adamw"
    lr: Float = Field(gt=0, le=1)
    betas: tuple[Beta, Beta] = (0.9, 0.95)
    eps: Float = Field(default=1e-5, gt=0, le=1)
    weight_decay: Float = Field(default=0.1, ge=0, le=1e3)
    grad_clip: Float = Field(default=1.0, ge=0, le=1e9)  # 0 turns clipping off
    # Clip warmup (OLMo's grad_clip_warmup_steps/_factor): for the first clip_warmup_steps
    # optimizer steps the clipping threshold is grad_clip x clip_warmup_factor.
    clip_warmup_steps: Int = Field(default=0, ge=0, le=STEPS_MAX)
    clip_warmup_factor: Float = Field(default=1.0, gt=0, le=1e6)
    # Weight decay on the token embedding (the tied output head too). OLMo's own default is
    # false (decay_embeddings); true here keeps one parameter group, as before the option.
    # OLMo's decay_norm_and_bias has nothing to act on: this model has no norm weights and
    # no biases.
    decay_embeddings: bool = True


class ScheduleConfig(Schema):
    warmup_steps: Int = Field(default=0, ge=0, le=STEPS_MAX)
    decay: Literal["linear", "cosine", "constant"] = "linear"
    # The warmup starts at lr * warmup_start_ratio and rises linearly to the peak (OLMo's
    # _linear_warmup starts at a tenth); 0: from lr / warmup_steps at the first step.
    warmup_start_ratio: Float = Field(default=0.0, ge=0, lt=1)
    # The learning rate decays to lr * final_lr_ratio (OLMo: to a tenth of the peak).
    final_lr_ratio: Float = Field(default=0.1, ge=0, le=1)
    # The step at which the decay reaches the floor (OLMo's t_max); null: the run's last
    # step. Steps past it stay at the floor.
    decay_steps: Int | None = Field(default=None, gt=0, le=STEPS_MAX)

    @model_validator(mode="after")
    def _check_decay(self) -> ScheduleConfig:
        if self.decay_steps is not None and self.decay_steps <= self.warmup_steps:
            raise ValueError(
                f"schedule.decay_steps ({self.decay_steps}) must exceed "
                f"schedule.warmup_steps ({self.warmup_steps})"
            )
        return self


class TrainConfig(Schema):
    seq_len: Int = Field(gt=0, le=DIM_MAX)
    # Instances (sequences) per optimizer step, across the whole job.
    global_batch_size: Int = Field(gt=0, le=DIM_MAX)
    # Instances per device per forward/backward; the rest is gradient accumulation.
    micro_batch_size: Int = Field(gt=0, le=DIM_MAX)
    # The budget: max_steps when set, else max_tokens / tokens per step (rounded up).
    max_tokens: Int | None = Field(default=None, gt=0, le=TOKENS_MAX)
    max_steps: Int | None = Field(default=None, gt=0, le=STEPS_MAX)
    seed: Int = Field(default=6198, ge=0, le=INT64_MAX)
    precision: Literal["bf16", "fp32"] = "bf16"
    log_interval: Int = Field(default=1, gt=0, le=STEPS_MAX)
    # Rank 0 writes a heartbeat event this often, from a thread, even while a step or a
    # save is slow: the launcher calls a job hung when heartbeats stop.
    heartbeat_interval_s: Float = Field(default=30.0, gt=0, le=DAY_S)
    # torch.compile each transformer block: "auto" compiles on a GPU and not on CPU (where
    # compiling costs more than it saves); true/false force it (`-o train.compile=false`).
    compile: Literal["auto"] | bool = "auto"
    # Attention kernel (torch SDPA backend) on a GPU: "auto" prefers cuDNN on Hopper/Blackwell
    # data-centre parts and flash elsewhere, falling back in order; CPU keeps torch's choice.
    attention: Literal["auto", "cudnn", "flash", "efficient", "math"] = "auto"
    # Loss: "chunked" computes the output head and cross entropy ce_chunk_tokens rows at a
    # time, never holding the full fp32 logits; "plain" materialises them (reference).
    cross_entropy: Literal["chunked", "plain"] = "chunked"
    ce_chunk_tokens: Int = Field(default=4096, gt=0, le=DIM_MAX)

    @model_validator(mode="after")
    def _check_budget(self) -> TrainConfig:
        if self.max_tokens is None and self.max_steps is None:
            raise ValueError("set train.max_tokens or train.max_steps")
        return self

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch_size * self.seq_len

    @property
    def total_steps(self) -> int:
        if self.max_steps is not None:
            return self.max_steps
        assert self.max_tokens is not None
        return math.ceil(self.max_tokens / self.tokens_per_step)


class FSDPConfig(Schema):
    # full: shard over every rank; hybrid: shard within a group, replicate across groups.
    strategy: Literal["full", "hybrid"] = "full"
    # Ranks per shard group for hybrid; 0 means one group per node.
    shard_group_size: Int = Field(default=0, ge=0, le=1_000_000)
    activation_checkpointing: bool = False
    # Blocks whose parameters are all-gathered ahead (forward) / behind (backward) of the one
    # computing; 0 leaves FSDP2's implicit one-ahead prefetch.
    prefetch: Int = Field(default=1, ge=0, le=64)
    # Mixed precision on GPU: params in bf16, gradients reduced in fp32. CPU runs fp32.
    param_dtype: Literal["bf16", "fp32"] = "bf16"
    reduce_dtype: Literal["bf16", "fp32"] = "fp32"


class CheckpointConfig(Schema):
    # `async` in recipes and overrides (a Python keyword, hence the alias); dumps say `async`.
    model_config = ConfigDict(
        **Schema.model_config, validate_by_name=True, validate_by_alias=True,
        serialize_by_alias=True,
    )  # fmt: skip

    interval_steps: Int = Field(default=1000, gt=0, le=STEPS_MAX)
    # The newest ephemeral checkpoints kept; permanent ones are kept besides these.
    keep_last: Int = Field(default=3, ge=1, le=1_000_000)
    # Every checkpoint whose step is a multiple of this is kept for good (0 = none), like
    # OLMo's save_interval_unsharded next to save_interval.
    permanent_interval_steps: Int = Field(default=0, ge=0, le=STEPS_MAX)
    # Write in the background while training continues (None: on GPU yes, on CPU no: there
    # the copy costs RAM and the writer competes with the compute for the same cores).
    async_save: bool | None = Field(default=None, alias="async")
    # DCP writer threads per rank (files per rank); more help on parallel filesystems.
    writer_threads: Int = Field(default=8, ge=1, le=64)


class DataConfig(Schema):
    # Token files (flat uint16/uint32 memmaps, OLMo/Dolma .npy or raw). Relative paths are
    # resolved against the cluster profile's data root.
    paths: list[Text] = Field(default_factory=list)
    dtype: Literal["uint16", "uint32"] = "uint16"
    # Build a small corpus at job start when paths is empty (tiny recipe only).
    synthetic: bool = False


# The eval set that holds the training data's held-out instances (eval.held_out_fraction).
HELD_OUT_SET = "held_out"


class EvalConfig(Schema):
    """In-loop evaluation (docs/training.md): every interval_steps steps, and at the last
    step, the mean loss over `batches` global batches of each eval set, no gradients."""

    interval_steps: Int = Field(gt=0, le=STEPS_MAX)
    # Eval set name -> token files (the formats of data.paths, resolved the same way). A
    # plain list names each set after its file (x/val.npy -> val).
    paths: dict[Name, list[Text]] = Field(default_factory=dict)
    # This fraction of the training instances (drawn once from train.seed, written to
    # RUN_DIR/held_out_indices.npy) is never trained on and forms the set "held_out".
    held_out_fraction: Float = Field(default=0.0, ge=0, le=0.5)
    # Global batches (train.global_batch_size instances each) per set and evaluation; a
    # set with fewer instances uses all its whole batches.
    batches: Int = Field(default=4, gt=0, le=1_000_000)

    @field_validator("paths", mode="before")
    @classmethod
    def _name_files(cls, v: object) -> object:
        if not isinstance(v, list):
            return v
        named: dict[str, list[object]] = {}
        for p in v:
            stem = PurePosixPath(str(p)).name.split(".")[0] if isinstance(p, str) else p
            if not isinstance(stem, str):
                return v  # let the type check name what is wrong
            if stem in named:
                raise ValueError(
                    f"two eval files are named {stem!r}; give the sets names instead, e.g. "
                    f"paths: {{{stem}_a: [{named[stem][0]}], {stem}_b: [{p}]}}"
                )
            named[stem] = [p]
        return named

    @model_validator(mode="after")
    def _check_sets(self) -> EvalConfig:
        if not self.paths and not self.held_out_fraction:
            raise ValueError(
                "eval has no eval set: give eval.paths (token files) or eval.held_out_fraction"
            )
        if HELD_OUT_SET in self.paths and self.held_out_fraction:
            raise ValueError(
                f"eval.paths names a set {HELD_OUT_SET!r}, the name of the held-out set; rename it"
            )
        for name, files in self.paths.items():
            if not files:
                raise ValueError(f"eval.paths.{name} lists no files")
        return self


class WandbConfig(Schema):
    project: Name
    entity: Name | None = None
    # offline writes RUN_DIR/wandb/offline-run-* for `wandb sync`; None: the cluster
    # profile's wandb_mode (offline unless the site's nodes reach the internet).
    mode: Literal["offline", "online"] | None = None


class MetricsConfig(Schema):
    """Metrics sinks beside events.jsonl (rank 0; optional extras; a failing sink is a
    warning event, never a stopped job)."""

    tensorboard: bool = False  # RUN_DIR/tensorboard/
    wandb: WandbConfig | None = None  # on when a project is named


class Recipe(Schema):
    name: Name  # in the batch script's header and the default run name
    description: Text = ""
    model: ModelConfig
    optim: OptimConfig
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig
    fsdp: FSDPConfig = FSDPConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    data: DataConfig = DataConfig()
    eval: EvalConfig | None = None
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="after")
    def _check_recipe(self) -> Recipe:
        if self.train.seq_len > self.model.max_seq_len:
            raise ValueError(
                f"train.seq_len ({self.train.seq_len}) exceeds model.max_seq_len "
                f"({self.model.max_seq_len})"
            )
        if not self.data.paths and not self.data.synthetic:
            raise ValueError("data.paths is empty and data.synthetic is false: no data to train on")
        return self
