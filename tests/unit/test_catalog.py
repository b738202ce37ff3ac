"""Profiles and recipes: shipped, the user's own, plain paths, and overrides."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from olmoctl.core.launch import catalog, specs
from tests.conftest import REPO


def test_paper_numbers(user_env: Path) -> None:
    assert catalog.load_recipe("7b").model.num_params() == 6_888_095_744
    assert catalog.load_recipe("1b").model.num_params() == 1_176_764_416
    r7 = catalog.load_recipe("7b")
    assert (r7.model.n_layers, r7.model.d_model, r7.model.n_heads) == (32, 4096, 32)
    assert r7.train.global_batch_size * r7.train.seq_len == 2048 * 2048
    r65 = catalog.load_recipe("65b")
    assert (r65.model.n_layers, r65.model.d_model, r65.model.n_heads) == (80, 8192, 64)
    assert r65.model.mlp_hidden == 22016


def test_overrides_are_typed(user_env: Path) -> None:
    spec = specs.resolve(
        "tiny",
        "dev",
        nodes=2,
        overrides=[
            "optim.lr=3e-4",
            "model.n_layers=4",
            "optim.betas=[0.8, 0.9]",
            "model.weight_tying=false",
            "data.paths=[a.npy, b.npy]",
            "cluster.env.EXTRA=$SLURM_JOB_ID",
            "train.max_tokens=null",
        ],
    )
    assert spec.recipe.optim.lr == 3e-4
    assert spec.recipe.model.n_layers == 4
    assert spec.recipe.optim.betas == (0.8, 0.9)
    assert spec.recipe.model.weight_tying is False
    assert spec.recipe.data.paths == ["a.npy", "b.npy"]
    assert spec.cluster.env["EXTRA"] == "$SLURM_JOB_ID"
    assert spec.overrides[0] == "optim.lr=3e-4"
    assert spec.world_size == 2 and spec.grad_accum_steps == 12


def test_user_profile_shadows_and_adds(user_env: Path, cli) -> None:
    clusters = user_env / "clusters"
    clusters.mkdir(parents=True)
    data = yaml.safe_load((REPO / "clusters" / "dev.yaml").read_text())
    data.update(name="mine", partition="gpu7", runs_root="/data/runs")
    (clusters / "mine.yaml").write_text(yaml.safe_dump(data))
    res = cli("render", "tiny", "--cluster", "mine")
    assert res.code == 0, res.err
    assert "#SBATCH --partition=gpu7" in res.out
    listed = json.loads(cli("clusters", "--json").out)
    mine = next(c for c in listed if c["name"] == "mine")
    assert mine["source"] == "user"


def test_profile_by_path(tmp_path: Path, cli) -> None:
    data = yaml.safe_load((REPO / "clusters" / "dev.yaml").read_text())
    data.update(name="site", partition="big")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    res = cli("render", "tiny", "--cluster", str(path), "-N", "2")
    assert res.code == 0, res.err
    assert "#SBATCH --partition=big" in res.out and "#SBATCH --nodes=2" in res.out


def test_account_from_environment(cli, monkeypatch) -> None:
    monkeypatch.setenv("OLMOCTL_ACCOUNT", "project_465000001")
    res = cli("render", "1b", "-c", "lumi")
    assert res.code == 0, res.err
    assert "#SBATCH --account=project_465000001" in res.out
    assert "/scratch/project_465000001/alice/olmoctl/runs/1b-lumi" in res.out


def test_recipes_and_clusters_json(cli) -> None:
    recipes = {r["name"]: r for r in json.loads(cli("recipes", "--json").out)}
    assert recipes["7b"]["params"] == 6_888_095_744
    clusters = {c["name"]: c for c in json.loads(cli("clusters", "--json").out)}
    assert clusters["lumi"]["vendor"] == "amd" and clusters["h100"]["vendor"] == "nvidia"
    assert cli("recipes").code == 0 and "tiny" in cli("recipes").out


def test_version(cli) -> None:
    from olmoctl import __version__

    res = cli("--version")
    assert res.code == 0 and res.out.strip() == f"olmoctl {__version__}"
