"""`olmoctl export --format hf` on a run trained on the real Slurm cluster with two ranks:
the exported directory loads with transformers' AutoModelForCausalLM and gives the same
logits as the trainer's own model loaded from the same checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from olmoctl.schemas.contract import step_dir_name

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
transformers = pytest.importorskip("transformers", reason="the export extra is not installed")


def _trainer_model(spec: dict, checkpoint: Path) -> torch.nn.Module:
    """The trainer's OLMo with the checkpoint's weights, loaded the trainer's way (DCP into
    the model's own state dict; no process group needed for one process)."""
    import torch.distributed.checkpoint as dcp

    from olmoctl.schemas.recipe import ModelConfig
    from olmoctl.train.model.olmo import OLMo

    model = OLMo(ModelConfig.model_validate(spec["recipe"]["model"]))
    state = {"model": model.state_dict()}
    dcp.load(state, checkpoint_id=str(checkpoint), no_dist=True)
    model.load_state_dict(state["model"])
    return model.eval()


def test_export_two_rank_checkpoint_loads_in_transformers(olmoctl, tmp_path: Path) -> None:
    res = olmoctl("launch", "tiny", "-c", "dev", "--nodes", "2", "--name", "ex", "--wait",
                  "-o", olmoctl.root, "-o", "train.max_steps=4",
                  "-o", "checkpoint.interval_steps=2")  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = tmp_path / "hf"
    summary = olmoctl.json("export", "ex", "--format", "hf", "--out", str(out))
    assert summary["step"] == 4 and summary["run"] == "ex"
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "model.safetensors", "olmoctl-export.json"
    ]  # fmt: skip
    run_dir = Path(olmoctl.runs) / "ex"
    spec = json.loads((run_dir / "spec.json").read_text())
    ours = _trainer_model(spec, run_dir / "checkpoints" / step_dir_name(4))

    theirs = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert type(theirs).__name__ == "OlmoForCausalLM"
    assert theirs.config.tie_word_embeddings is True  # tiny ties its embeddings
    tokens = torch.randint(0, 257, (3, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = ours(tokens)
        got = theirs(tokens).logits
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    # An earlier step, and the same out again: refused, nothing touched.
    again = olmoctl("export", "ex", "--out", str(out), "--step", "2")
    assert again.returncode == 2 and "already exists" in again.stderr
    older = olmoctl.json("export", "ex", "--out", str(tmp_path / "hf2"), "--step", "2")
    assert older["step"] == 2
    missing = olmoctl("export", "ex", "--out", str(tmp_path / "hf3"), "--step", "3")
    assert missing.returncode == 2
    assert "no complete checkpoint at step 3; complete: 2, 4" in missing.stderr
