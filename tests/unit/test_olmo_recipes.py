"""The paper recipes against the configs that trained OLMo (issue 15, item 6): every value the
recipes cite from allenai/OLMo (configs/official/OLMo-{1B,7B}.yaml at 15af6688,
configs/mitchish65.yaml at 4cb93c47), and the training options they need: OLMo's "mitchell"
init, clip warmup, no weight decay on embeddings, the decay horizon (t_max)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from olmoctl.core.launch import catalog
from olmoctl.schemas.recipe import ModelConfig, OptimConfig, Recipe, ScheduleConfig
from olmoctl.train.model.olmo import OLMo
from olmoctl.train.model.optim import build_optimizer, clip_at, lr_at, param_groups

TOKENS_PER_STEP = 2048 * 2048

# recipe -> dotted path -> the value the OLMo config gives (converted to this schema's units).
CITED: dict[str, dict[str, Any]] = {
    "1b": {
        "model.init": "mitchell",  # OLMo-1B.yaml:36
        "optim.lr": 4.0e-4,  # :42
        "optim.weight_decay": 0.1,  # :43
        "optim.grad_clip": 1.0,  # :79
        "optim.clip_warmup_steps": 0,  # no grad_clip_warmup_*
        "optim.decay_embeddings": False,  # OLMo's default (config.py:450)
        "schedule.decay": "cosine",  # :50
        "schedule.warmup_steps": 2000,  # :51
        "schedule.warmup_start_ratio": 0.1,  # olmo/optim.py:479-480
        "schedule.final_lr_ratio": 0.1,  # :52
        "schedule.decay_steps": None,  # no t_max: the whole run
        "train.max_steps": 739_328,  # :69
        "train.global_batch_size": 2048,  # :70
        "train.micro_batch_size": 8,  # :71
        "train.seed": 6198,  # :2
        "fsdp.strategy": "full",  # OLMo's default FULL_SHARD
        "checkpoint.interval_steps": 1000,  # :61
    },
    "7b": {
        "model.init": "mitchell",  # OLMo-7B.yaml:37
        "optim.lr": 3.0e-4,  # :44
        "optim.weight_decay": 0.1,  # :45
        "optim.grad_clip": 1.0,  # :85
        "optim.clip_warmup_steps": 1000,  # :55
        "optim.clip_warmup_factor": 10.0,  # :56
        "optim.decay_embeddings": False,  # OLMo's default (config.py:450)
        "schedule.decay": "linear",  # :52
        "schedule.warmup_steps": 5000,  # :53
        "schedule.warmup_start_ratio": 0.1,  # olmo/optim.py:479-480
        "schedule.final_lr_ratio": 0.1,  # :54
        "schedule.decay_steps": 2 * 10**12 // TOKENS_PER_STEP,  # :74 max_duration: 2e12T
        "train.max_tokens": 2_460_000_000_000,  # paper, Table 1
        "train.micro_batch_size": 2,  # :76
        "fsdp.strategy": "full",
        "fsdp.activation_checkpointing": False,
        "checkpoint.interval_steps": 1000,  # :66
    },
    "65b": {
        "model.init": "mitchell",  # mitchish65.yaml:38
        "model.mlp_hidden": 44032 // 2,  # :15
        "optim.lr": 1.5e-4,  # :44
        "optim.weight_decay": 0.1,  # :45
        "optim.decay_embeddings": True,  # :47
        "optim.grad_clip": 1.0,  # :91
        "optim.clip_warmup_steps": 2_097_152_000 // TOKENS_PER_STEP,  # :59 (tokens: 500 steps)
        "optim.clip_warmup_factor": 5.0,  # :60
        "schedule.decay": "cosine",  # :54
        "schedule.warmup_steps": 10_485_760_000 // TOKENS_PER_STEP,  # :56 (tokens: 2500 steps)
        "schedule.warmup_start_ratio": 0.1,  # olmo/optim.py:479-480 (at 4cb93c47 too)
        "schedule.final_lr_ratio": 0.1,  # :58
        "schedule.decay_steps": None,  # :57 t_max 2e12 = :79 max_duration: the whole run
        "train.max_tokens": 2 * 10**12,  # :79
        "train.global_batch_size": 2048,  # :80
        "train.micro_batch_size": 1,  # :81
        "fsdp.strategy": "full",  # no sharding_strategy: FULL_SHARD (config.py:672)
        "fsdp.activation_checkpointing": True,  # :89 whole_layer
    },
}


def _get(recipe: Recipe, path: str) -> Any:
    node: Any = recipe
    for part in path.split("."):
        node = getattr(node, part)
    return node


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [(n, p, v) for n, values in CITED.items() for p, v in values.items()],
)
def test_recipes_carry_the_olmo_configs_values(
    user_env: object, name: str, path: str, value: Any
) -> None:
    assert _get(catalog.load_recipe(name), path) == value


def test_the_cited_token_counts_are_whole_steps() -> None:
    assert 2_097_152_000 % TOKENS_PER_STEP == 0 and 10_485_760_000 % TOKENS_PER_STEP == 0
    tokens = 739_328 * TOKENS_PER_STEP
    assert abs(tokens - 3.1e12) < 0.001 * 3.1e12  # "~3.1T tokens"


def test_the_tiny_recipe_keeps_the_old_behaviour(user_env: object) -> None:
    r = catalog.load_recipe("tiny")
    assert (r.model.init, r.optim.decay_embeddings) == ("normal", True)
    assert (r.optim.clip_warmup_steps, r.schedule.decay_steps) == (0, None)


# ---- clip warmup and the decay horizon ------------------------------------------------------
def test_clip_threshold_per_step() -> None:
    cfg = OptimConfig(lr=1e-3, grad_clip=1.0, clip_warmup_steps=1000, clip_warmup_factor=10.0)
    # OLMo: factor while its 1-based step <= grad_clip_warmup_steps, i.e. 0-based < 1000.
    assert [clip_at(s, cfg) for s in (0, 1, 999, 1000, 1001, 10**6)] == [10, 10, 10, 1, 1, 1]
    plain = OptimConfig(lr=1e-3, grad_clip=1.0)
    assert all(clip_at(s, plain) == 1.0 for s in (0, 5, 10**9))
    off = OptimConfig(lr=1e-3, grad_clip=0.0, clip_warmup_steps=10, clip_warmup_factor=5.0)
    assert clip_at(0, off) == 0.0  # clipping off stays off


def test_decay_ends_at_decay_steps_then_holds_the_floor() -> None:
    s = ScheduleConfig(warmup_steps=10, decay="linear", final_lr_ratio=0.1, decay_steps=110)
    assert lr_at(60, 1.0, s, 1000) == pytest.approx(0.55)
    assert lr_at(110, 1.0, s, 1000) == pytest.approx(0.1)
    assert lr_at(999, 1.0, s, 1000) == pytest.approx(0.1)
    same = ScheduleConfig(warmup_steps=10, decay="linear", final_lr_ratio=0.1)
    assert all(lr_at(k, 1.0, same, 110) == lr_at(k, 1.0, s, 1000) for k in range(0, 111))


def test_warmup_starts_at_a_tenth_of_the_peak_like_olmo() -> None:
    s = ScheduleConfig(warmup_steps=2000, decay="cosine", warmup_start_ratio=0.1)
    # OLMo: initial_lr * (0.1 + 0.9 * min(step, W) / W), its step 1-based (ours + 1).
    for step in (0, 1, 999, 1999):
        olmo = 4e-4 * (0.1 + 0.9 * min(step + 1, 2000) / 2000)
        assert lr_at(step, 4e-4, s, 10_000) == pytest.approx(olmo, rel=1e-12)
    assert lr_at(2000, 4e-4, s, 10_000) == pytest.approx(4e-4)
    zero = ScheduleConfig(warmup_steps=10, decay="linear")  # the default: from lr / W, as before
    assert [lr_at(k, 1.0, zero, 100) for k in range(3)] == [0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (ScheduleConfig, {"warmup_steps": 10, "decay_steps": 10}, "must exceed"),
        (ScheduleConfig, {"decay_steps": 0}, "greater than 0"),
        (OptimConfig, {"lr": 1e-3, "clip_warmup_steps": -1}, "greater than or equal to 0"),
        (OptimConfig, {"lr": 1e-3, "clip_warmup_factor": 0}, "greater than 0"),
        (OptimConfig, {"lr": 1e-3, "clip_warmup_factor": 1e7}, "less than or equal"),
        (ModelConfig, {"init": "xavier"}, "'normal' or 'mitchell'"),
    ],
)
def test_bad_values_are_refused(section: Any, values: dict[str, Any], message: str) -> None:
    base = {
        ModelConfig: {"d_model": 64, "n_layers": 2, "n_heads": 4, "mlp_hidden": 176,
                      "vocab_size": 257, "embedding_size": 264, "max_seq_len": 64},
    }.get(section, {})  # fmt: skip
    with pytest.raises(ValidationError, match=message):
        section.model_validate({**base, **values})


# ---- weight decay groups ----------------------------------------------------------------------
def _model(**kw: Any) -> OLMo:
    cfg = ModelConfig(
        d_model=64, n_layers=2, n_heads=4, mlp_hidden=176, vocab_size=257,
        embedding_size=264, max_seq_len=64, **kw,
    )  # fmt: skip
    return OLMo(cfg)


@pytest.mark.parametrize("tying", [True, False])
def test_embeddings_get_no_weight_decay(tying: bool) -> None:
    model = _model(weight_tying=tying)
    opt = build_optimizer(model, OptimConfig(lr=1e-3, weight_decay=0.1, decay_embeddings=False))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [p is model.wte.weight for p in no_decay["params"]] == [True]
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert decayed == sorted(n for n in names.values() if n != "wte.weight")
    assert ("lm_head.weight" in decayed) == (not tying)  # the untied head is a Linear


def test_decaying_everything_is_one_group() -> None:
    model = _model()
    (group,) = param_groups(model, OptimConfig(lr=1e-3))
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]


# ---- the mitchell init -------------------------------------------------------------------------
# A truncated normal at +-3 sigma has std sigma x this (1 - 6 phi(3) / (2 Phi(3) - 1))^0.5.
TRUNC3 = math.sqrt(1 - 6 * math.exp(-4.5) / math.sqrt(2 * math.pi) / math.erf(3 / math.sqrt(2)))


def test_mitchell_init_std_per_layer_and_truncation() -> None:
    d, f, layers = 256, 704, 4
    cfg = ModelConfig(
        d_model=d, n_layers=layers, n_heads=4, mlp_hidden=f, vocab_size=1000,
        embedding_size=1024, max_seq_len=64, weight_tying=False, init="mitchell",
    )  # fmt: skip
    model = OLMo(cfg)
    model.init_weights(seed=7)
    expected = {"wte.weight": d**-0.5, "lm_head.weight": d**-0.5}
    for i in range(layers):
        depth = math.sqrt(2 * (i + 1))
        expected |= {
            f"blocks.{i}.attn.att_proj.weight": d**-0.5,
            f"blocks.{i}.mlp.ff_proj.weight": d**-0.5,
            f"blocks.{i}.attn.attn_out.weight": d**-0.5 / depth,
            f"blocks.{i}.mlp.ff_out.weight": f**-0.5 / depth,
        }
    params = dict(model.named_parameters())
    assert set(params) == set(expected)
    for name, sigma in expected.items():
        w = params[name].detach().double()
        assert abs(w.mean().item()) < 0.02 * sigma, name
        assert w.std().item() == pytest.approx(sigma * TRUNC3, rel=0.03), name
        assert w.abs().max().item() <= 3 * sigma * (1 + 1e-6), name  # truncated at 3 sigma
        assert w.abs().max().item() > 2.5 * sigma, name  # ... and not narrower
    # Deeper blocks' output projections start smaller: 1/sqrt(2 (i + 1)).
    outs = [params[f"blocks.{i}.attn.attn_out.weight"].std().item() for i in range(layers)]
    assert outs == sorted(outs, reverse=True)


def test_normal_init_is_untruncated_normal() -> None:
    model = _model(init="normal", init_std=0.02)
    model.init_weights(seed=7)
    w = model.wte.weight.detach().double()
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
    assert w.abs().max().item() > 3 * 0.02  # 264 x 64 normal draws pass 3 sigma


def test_mitchell_init_is_the_same_built_on_meta_or_cpu() -> None:
    a = _model(init="mitchell")
    a.init_weights(seed=3)
    with torch.device("meta"):
        b = _model(init="mitchell")
    b.to_empty(device="cpu")
    b.init_weights(seed=3)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
