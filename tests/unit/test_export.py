"""`olmoctl export --format hf`: the field/name mapping (schemas/hf.py), the tensor work
(train/model/export_hf.py) on a checkpoint saved here, and every refusal (one line, exit 2,
nothing written). The real flow (a run on the Slurm cluster, two ranks) is
tests/integration/test_export.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from olmoctl.core.launch import catalog
from olmoctl.schemas import hf
from olmoctl.schemas.recipe import ModelConfig
from olmoctl.train.model.olmo import OLMo

# The published configs of the paper's models on the Hugging Face hub
# (allenai/OLMo-1B-hf and allenai/OLMo-7B-hf config.json), the fields the architecture uses.
PUBLISHED = {
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
           "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 50304,
           "max_position_embeddings": 2048, "tie_word_embeddings": True, "rope_theta": 10000.0,
           "eos_token_id": 50279, "pad_token_id": 1, "attention_bias": False,
           "clip_qkv": None, "hidden_act": "silu"},
    "7b": {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 50304,
           "max_position_embeddings": 2048, "tie_word_embeddings": False, "rope_theta": 10000.0,
           "eos_token_id": 50279, "pad_token_id": 1, "attention_bias": False,
           "clip_qkv": None, "hidden_act": "silu"},
}  # fmt: skip


@pytest.mark.parametrize("recipe", sorted(PUBLISHED))
def test_paper_recipes_map_to_the_published_hf_configs(recipe: str) -> None:
    r = catalog.load_recipe(recipe)
    eos, pad = hf.default_token_ids(r.model, r.data.synthetic)
    got = hf.config(r.model, dtype="float32", eos_token_id=eos, pad_token_id=pad)
    assert {k: got[k] for k in PUBLISHED[recipe]} == PUBLISHED[recipe]
    assert got["rope_parameters"] == {"rope_type": "default", "rope_theta": 10000.0}
    assert hf.refusals(r.model) == []


@pytest.mark.parametrize("recipe", ["tiny", "1b", "7b", "65b"])
def test_the_name_table_covers_every_parameter_exactly(recipe: str) -> None:
    cfg = catalog.load_recipe(recipe).model
    with torch.device("meta"):
        model = OLMo(cfg)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    table = hf.parameter_names(cfg)
    assert set(table) == set(shapes)
    for name, parts in table.items():
        assert sum(rows for _, rows in parts) == shapes[name][0], name
    hf_names = [n for parts in table.values() for n, _ in parts]
    assert len(hf_names) == len(set(hf_names))


def test_a_norm_epsilon_hf_cannot_express_is_refused() -> None:
    cfg = catalog.load_recipe("tiny").model.model_copy(update={"layer_norm_eps": 1e-6})
    (why,) = hf.refusals(cfg)
    assert "layer_norm_eps is 1e-06" in why and "fixed at 1e-05" in why


def _tiny_checkpoint(path: Path) -> tuple[ModelConfig, OLMo]:
    import torch.distributed.checkpoint as dcp

    cfg = catalog.load_recipe("tiny").model
    torch.manual_seed(0)
    model = OLMo(cfg)
    model.init_weights(seed=1)
    dcp.save({"model": model.state_dict()}, checkpoint_id=str(path), no_dist=True)
    return cfg, model.eval()


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_export_writes_a_directory_transformers_loads(tmp_path: Path, dtype: str) -> None:
    transformers = pytest.importorskip("transformers", reason="export extra not installed")
    from olmoctl.train.model import export_hf

    cfg, ours = _tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "out" / "model"
    summary = export_hf.export(tmp_path / "ckpt", cfg, out, dtype=dtype, eos_token_id=256)
    assert summary["parameters"] == sum(p.numel() for p in ours.parameters())
    assert [p.name for p in out.parent.iterdir()] == ["model"]  # no temp dir left behind
    config = json.loads((out / "config.json").read_text())
    assert config["torch_dtype"] == hf.DTYPES[dtype] and config["eos_token_id"] == 256
    theirs = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tokens = torch.randint(0, 257, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ours(tokens), theirs(tokens).logits
    if dtype == "fp32":
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    else:  # bf16 weights: close, not equal
        assert (got - want).abs().max() < 0.1


def test_a_checkpoint_of_another_shape_is_refused_and_nothing_written(tmp_path: Path) -> None:
    from olmoctl.errors import OlmoctlError
    from olmoctl.train.model import export_hf

    cfg, _ = _tiny_checkpoint(tmp_path / "ckpt")
    other = cfg.model_copy(update={"n_layers": 3})
    with pytest.raises(OlmoctlError, match=r"missing blocks\.2"):
        export_hf.export(tmp_path / "ckpt", other, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def _run(tmp_path: Path) -> str:
    from olmoctl.core.launch import specs
    from olmoctl.store import Store

    spec = specs.resolve("tiny", "dev", name="r", overrides=[f"cluster.runs_root={tmp_path}"])
    with Store().tx() as tx:
        tx.create_run(spec, state="COMPLETED")
    return spec.run_dir


def _checkpoints(run_dir: str, steps: list[int]) -> None:
    from olmoctl.schemas.contract import COMPLETE_MARKER, checkpoints_root, step_dir_name

    for s in steps:
        d = checkpoints_root(run_dir) / step_dir_name(s)
        d.mkdir(parents=True)
        (d / COMPLETE_MARKER).write_text(json.dumps({"step": s}))
    torn = checkpoints_root(run_dir) / step_dir_name(99)
    torn.mkdir(parents=True)  # no marker: never offered


def test_refusals_are_one_line_and_exit_2(cli, tmp_path: Path) -> None:
    res = cli("export", "nope", "--out", str(tmp_path / "o"))
    assert res.code == 2 and "no run named 'nope'" in res.err
    run_dir = _run(tmp_path)
    res = cli("export", "r", "--out", str(tmp_path / "o"))
    assert res.code == 2 and "run r has no complete checkpoint yet" in res.err
    _checkpoints(run_dir, [5, 10])
    cases = {
        ("--format", "onnx"): "--format onnx is not supported; valid: hf",
        ("--dtype", "int8"): "--dtype 'int8' is not one of fp32, bf16, fp16",
        ("--step", "-1"): "--step must be at least 0",
        ("--step", "7"): "run r has no complete checkpoint at step 7; complete: 5, 10",
    }
    for args, want in cases.items():
        res = cli("export", "r", "--out", str(tmp_path / "o"), *args)
        assert res.code == 2, (args, res.err)
        assert want in res.err and len(res.err.strip().splitlines()) == 1, res.err
    taken = tmp_path / "taken"
    taken.mkdir()
    res = cli("export", "r", "--out", str(taken))
    assert res.code == 2 and "already exists" in res.err
    assert not (tmp_path / "o").exists()
