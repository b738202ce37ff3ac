"""How an olmoctl model maps onto Hugging Face `transformers`' OLMo (`OlmoForCausalLM`,
model_type "olmo"): the config fields and the parameter names. Torch-free, so the launcher
can refuse an export before loading anything; the job side (train/model/export_hf.py) does the
tensor work with the same table.

Field by field (transformers models/olmo/configuration_olmo.py and modeling_olmo.py):
  d_model -> hidden_size, mlp_hidden -> intermediate_size (the width after SwiGLU's gate),
  n_layers -> num_hidden_layers, n_heads -> num_attention_heads = num_key_value_heads (no
  GQA), embedding_size -> vocab_size (the logits' width, padding rows included, as OLMo's own
  conversions do), max_seq_len -> max_position_embeddings, rope_theta ->
  rope_parameters.rope_theta (rope_type "default": the same GPT-NeoX rotate-half),
  weight_tying -> tie_word_embeddings; no biases (attention_bias false), no QKV clipping.
  HF's OlmoLayerNorm is ours: non-parametric, in fp32, but with eps fixed at 1e-5.
Parameters: att_proj [q; k; v] splits into q_proj/k_proj/v_proj; ff_proj [up; gate] (OLMo's
`x, x_gate = x.chunk(2)`) splits into up_proj/gate_proj, the same order as OLMo's
convert_olmo_weights_to_hf.py.
"""

from __future__ import annotations

from typing import Any

from olmoctl.schemas.recipe import ModelConfig

# Weight dtypes an export writes: our word -> config.json's.
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# transformers' OlmoLayerNorm hard-codes this epsilon.
HF_LAYER_NORM_EPS = 1e-5
# The OLMo (GPT-NeoX-20B based) tokenizer of the paper recipes: <|endoftext|> and <|padding|>.
OLMO_TOKENIZER_VOCAB = 50280
OLMO_EOS_TOKEN_ID = 50279
OLMO_PAD_TOKEN_ID = 1


def refusals(model: ModelConfig) -> list[str]:
    """Why `model` cannot be written as an HF OLMo model (empty when it can)."""
    out = []
    if model.layer_norm_eps != HF_LAYER_NORM_EPS:
        out.append(
            f"model.layer_norm_eps is {model.layer_norm_eps:g}, but transformers' OLMo "
            f"LayerNorm is fixed at {HF_LAYER_NORM_EPS:g}"
        )
    return out


def default_token_ids(model: ModelConfig, synthetic: bool) -> tuple[int | None, int | None]:
    """(eos, pad) for the tokenizer the recipe trains with: the byte tokenizer of the
    synthetic corpus (end-of-document = 256, no padding), the OLMo tokenizer for a
    50280-token vocabulary, else unknown (None: the user passes them)."""
    if synthetic:
        return 256, None
    if model.vocab_size == OLMO_TOKENIZER_VOCAB:
        return OLMO_EOS_TOKEN_ID, OLMO_PAD_TOKEN_ID
    return None, None


def config(
    model: ModelConfig,
    *,
    dtype: str,
    eos_token_id: int | None,
    pad_token_id: int | None,
) -> dict[str, Any]:
    """config.json for `AutoModelForCausalLM.from_pretrained`."""
    return {
        "architectures": ["OlmoForCausalLM"],
        "model_type": "olmo",
        "vocab_size": model.embedding_size,
        "hidden_size": model.d_model,
        "intermediate_size": model.mlp_hidden,
        "num_hidden_layers": model.n_layers,
        "num_attention_heads": model.n_heads,
        "num_key_value_heads": model.n_heads,
        "hidden_act": "silu",
        "max_position_embeddings": model.max_seq_len,
        "initializer_range": model.init_std,
        "use_cache": True,
        "pad_token_id": pad_token_id,
        "bos_token_id": None,
        "eos_token_id": eos_token_id,
        "tie_word_embeddings": model.weight_tying,
        "rope_parameters": {"rope_type": "default", "rope_theta": float(model.rope_theta)},
        # Older transformers read rope_theta at the top level.
        "rope_theta": float(model.rope_theta),
        "attention_bias": False,
        "attention_dropout": 0.0,
        "clip_qkv": None,
        "dtype": dtype,
        "torch_dtype": dtype,
    }


def parameter_names(model: ModelConfig) -> dict[str, list[tuple[str, int]]]:
    """olmoctl parameter -> [(HF parameter, rows)], in the order the rows are stacked: each
    olmoctl weight splits along dim 0 into the HF weights listed."""
    d, h = model.d_model, model.mlp_hidden
    names: dict[str, list[tuple[str, int]]] = {
        "wte.weight": [("model.embed_tokens.weight", model.embedding_size)]
    }
    for i in range(model.n_layers):
        ours, hf = f"blocks.{i}", f"model.layers.{i}"
        names[f"{ours}.attn.att_proj.weight"] = [
            (f"{hf}.self_attn.q_proj.weight", d),
            (f"{hf}.self_attn.k_proj.weight", d),
            (f"{hf}.self_attn.v_proj.weight", d),
        ]
        names[f"{ours}.attn.attn_out.weight"] = [(f"{hf}.self_attn.o_proj.weight", d)]
        names[f"{ours}.mlp.ff_proj.weight"] = [
            (f"{hf}.mlp.up_proj.weight", h),
            (f"{hf}.mlp.gate_proj.weight", h),
        ]
        names[f"{ours}.mlp.ff_out.weight"] = [(f"{hf}.mlp.down_proj.weight", d)]
    if not model.weight_tying:
        names["lm_head.weight"] = [("lm_head.weight", model.embedding_size)]
    return names
