"""`olmoctl plan`: parameter and FLOP counts by hand, the paper's energy -> CO2 step,
throughput, memory, checkpoint interval, the CLI's output and its bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from olmoctl.core.plan import costs as P
from olmoctl.core.plan import inputs as plan_inputs
from olmoctl.errors import UsageError

LUMI = ["-o", "cluster.account=project_465000000"]
TOKENS_PER_STEP = 2048 * 2048


def _plan(recipe: str, cluster: str, nodes: int, overrides=(), **kw) -> P.Plan:
    r, c = plan_inputs.load(recipe, cluster, list(overrides))
    return P.make_plan(r, c, nodes, **kw)


# By hand: a block is q, k, v, o (4 d^2) + SwiGLU gate, up, down (3 d h); no biases, no norm
# weights. 1B: d=2048, h=8192, 16 layers, tied embeddings of 50304 rows. 7B: d=4096,
# h=11008, 32 layers, untied (input embedding + output projection).
BLOCK_1B = 4 * 2048**2 + 3 * 2048 * 8192  # 67,108,864
BLOCK_7B = 4 * 4096**2 + 3 * 4096 * 11008  # 202,375,168


@pytest.mark.parametrize(
    ("recipe", "total", "non_embedding", "matmul"),
    [
        ("1b", 1_176_764_416, 16 * BLOCK_1B, 16 * BLOCK_1B + 50304 * 2048),
        # OLMo-7B: 6,888,095,744 parameters (the paper's "about 6.9B").
        ("7b", 6_888_095_744, 32 * BLOCK_7B, 32 * BLOCK_7B + 50304 * 4096),
    ],
)
def test_parameter_counts(recipe: str, total: int, non_embedding: int, matmul: int) -> None:
    r, _ = plan_inputs.load(recipe, "lumi")
    p = P.param_counts(r.model)
    assert (p.total, p.non_embedding, p.matmul) == (total, non_embedding, matmul)
    assert non_embedding == {"1b": 1_073_741_824, "7b": 6_476_005_376}[recipe]


@pytest.mark.parametrize(
    ("recipe", "per_token", "tokens"),
    [
        # 6 x 1,176,764,416 + 12 x 16 x 2048 x 2048; 739,328 steps (OLMo-1B.yaml max_duration)
        ("1b", 7_060_586_496 + 805_306_368, 739_328 * 2048 * 2048),
        # 6 x 6,682,050,560 + 12 x 32 x 4096 x 2048
        ("7b", 40_092_303_360 + 3_221_225_472, 2_460_000_000_000),
    ],
)
def test_flops(recipe: str, per_token: int, tokens: int) -> None:
    p = _plan(recipe, "lumi", 64)
    assert p.flops.per_token == per_token
    steps = math.ceil(tokens / TOKENS_PER_STEP)
    assert p.steps == steps and p.flops.tokens == steps * TOKENS_PER_STEP
    assert p.flops.total == pytest.approx(per_token * steps * TOKENS_PER_STEP)


def test_energy_to_co2_reproduces_the_olmo_paper() -> None:
    # OLMo paper, Table 8: 104 MWh on the A100 cluster, PUE 1.1, 0.610 kg/kWh -> 69.78 t.
    assert round(P.co2_tonnes(104_000, pue=1.1, carbon_kg_per_kwh=0.610), 2) == 69.78
    assert P.facility_kwh(node_power_kw=2.0, nodes=10, hours=5, pue=1.1) == pytest.approx(110)


def test_throughput_time_energy_for_7b_on_lumi() -> None:
    p = _plan("7b", "lumi", 256, LUMI[1:])
    assert p.gpus == 2048 and p.mfu == plan_inputs.DEFAULT_MFU and "default" in p.mfu_source
    tps = 191.5e12 * 0.40 * 2048 / p.flops.per_token
    assert p.tokens_per_s == pytest.approx(tps)
    wall = p.flops.total / (191.5e12 * 0.40 * 2048)
    assert p.ideal.wall_s == pytest.approx(wall)
    hours = wall / 3600
    assert p.ideal.gpu_hours == pytest.approx(2048 * hours)
    assert p.ideal.node_hours == pytest.approx(256 * hours)
    assert p.ideal.energy_mwh == pytest.approx(2.2 * 256 * hours * 1.1 / 1000)
    assert p.ideal.co2_t == 0.0  # LUMI: hydro power
    assert p.expected.wall_s > p.ideal.wall_s and p.expected.gpu_hours > p.ideal.gpu_hours
    # --mfu scales throughput; an observed MFU is used when there is no --mfu.
    assert _plan("7b", "lumi", 256, mfu=0.5).tokens_per_s == pytest.approx(tps * 0.5 / 0.4)
    obs = plan_inputs.Observed(mfu=0.3, node_mtbf_hours=1000.0, source="store: 3 runs")
    q = _plan("7b", "lumi", 256, observed=obs)
    assert q.mfu == 0.3 and "store: 3 runs" in q.mfu_source
    assert q.costs.job_mtbf_s == pytest.approx(1000 * 3600 / 256)


def test_observed_is_empty_until_the_store_records_it() -> None:
    assert plan_inputs.observed("7b", "lumi") == plan_inputs.Observed(None, None, "none")


def test_checkpoint_interval_is_young_daly() -> None:
    p = _plan("7b", "h100", 128)
    ckpt = 6_888_095_744 * 12
    assert p.costs.save_s == pytest.approx(ckpt / 20e9)
    mtbf = 6335 * 3600 / 128
    assert p.costs.job_mtbf_s == pytest.approx(mtbf)
    yd = p.intervals["young_daly_sync"]
    assert yd.interval_s == pytest.approx(math.sqrt(2 * p.costs.save_s * mtbf))
    assert p.intervals["recipe_sync"].interval_s == pytest.approx(1000 * p.step_s)
    # Young/Daly's saves and rework cost about the same, and it beats the recipe's interval.
    assert yd.saves == pytest.approx(yd.rework, rel=0.05)
    assert yd.goodput >= p.intervals["recipe_sync"].goodput
    for o in p.intervals.values():
        assert o.goodput + o.saves + o.rework + o.restarts + o.queue == pytest.approx(1)


def test_overhead_without_failures_is_the_save_time() -> None:
    c = P.Costs(10.0, 10.0, 1.0, 1e30, 300.0, 600.0, 180.0, 0.0)
    assert P.overhead(990.0, c, False).goodput == pytest.approx(0.99)
    assert P.overhead(999.0, c, True).goodput == pytest.approx(0.999)


def test_memory_per_gpu_and_the_warning() -> None:
    full = _plan("7b", "lumi", 256)
    assert full.memory.shard_size == 2048 and full.memory.fits
    assert full.memory.params_gb == pytest.approx(4 * 6_888_095_744 / 2048 / 1e9)
    # hybrid sharding within a node (the recipe shards fully): 65B x 16 B / 8 GPUs
    hybrid = _plan("65b", "lumi", 32, ["fsdp.strategy=hybrid", "fsdp.shard_group_size=0"])
    assert hybrid.memory.shard_size == 8 and not hybrid.memory.fits
    assert hybrid.memory.total_gb > 130
    (line,) = [w for w in hybrid.warnings if "GB per GPU" in w]
    assert f"~{hybrid.memory.total_gb:.1f} GB per GPU" in line and "64 GB" in line
    assert "-o fsdp.strategy=full" in line and "launch would refuse it" in line


def test_cli_7b_on_lumi_prints_everything(cli) -> None:
    res = cli("plan", "7b", "--cluster", "lumi", "--nodes", "256", *LUMI)
    assert res.code == 0, res.err
    for text in (
        "2,048 GPUs",
        "6,888,095,744",
        "non-embedding",
        "FLOPs per token",
        "1.066e+23",
        "0.40 (default",
        "tokens/s",
        "wall time",
        "GPU-hours",
        "node-hours",
        "MWh",
        "CO2eq",
        "Memory per GPU",
        "fits",
        "Young/Daly, sync",
        "Young/Daly, async",
        "a save every 1,000 steps",
        "job MTBF",
        "train.micro_batch_size=1",  # 2048 GPUs x 2 is more than the batch of 2048
    ):
        assert text in res.out, text


def test_cli_1b_on_a100_with_simulation_and_json(cli) -> None:
    res = cli("plan", "1b", "-c", "a100", "-N", "27", "--simulate", "--seeds", "8")
    assert res.code == 0, res.err
    for text in ("216 GPUs", "1,176,764,416", "CO2eq", "Simulated goodput", "simulated optimum"):
        assert text in res.out, text
    res = cli("plan", "1b", "-c", "a100", "-N", "27", "--json", "--mfu", "0.5", "--simulate")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["mfu"] == 0.5 and data["mfu_source"] == "--mfu"
    assert data["params"]["total"] == 1_176_764_416
    assert data["ideal"]["co2_t"] == pytest.approx(
        3.7 * 27 * data["ideal"]["wall_s"] / 3600 * 1.1 * 0.610 / 1000
    )
    assert set(data["intervals"]) == {
        "recipe_sync",
        "recipe_async",
        "young_daly_sync",
        "young_daly_async",
    }
    assert data["simulation"]["seeds"] == 32
    assert 0.9 < data["simulation"]["modes"]["async"]["young_daly"]["mean"] <= 1


def _one_line_error(res, code: int = 2) -> str:
    assert res.code == code, (res.code, res.out, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-N", "0"], "--nodes must be at least 1, got 0"),
        (["-N", "-4"], "--nodes must be at least 1, got -4"),
        (["--mfu", "0"], "--mfu must be in (0, 1], got 0.0"),
        (["--mfu", "1.5"], "--mfu must be in (0, 1], got 1.5"),
        (["--mfu", "-0.2"], "--mfu must be in (0, 1], got -0.2"),
        (["--mfu", "nan"], "--mfu must be in (0, 1]"),
        (["-o", "cluster.gpu_memory_gb=0"], "cluster.gpu_memory_gb is 0.0"),
        (["-o", "cluster.energy.pue=0.5"], "cluster.energy.pue"),
        (["--simulate", "--seeds", "1"], "--seeds must be at least 2"),
    ],
)
def test_cli_bad_input(cli, args: list[str], expected: str) -> None:
    res = cli("plan", "7b", "-c", "lumi", *(["-N", "8"] if "-N" not in args else []), *args)
    assert expected in _one_line_error(res)


@pytest.mark.parametrize("cluster", ["dev", "local"])
def test_profile_without_a_peak_names_the_key(cli, cluster: str) -> None:
    line = _one_line_error(cli("plan", "1b", "-c", cluster))
    assert "cluster.peak_tflops_bf16 is 0.0" in line
    assert "-o cluster.peak_tflops_bf16=" in line


def test_plan_core_rejects_bad_numbers() -> None:
    r, c = plan_inputs.load("1b", "a100")
    with pytest.raises(UsageError, match="--nodes must be at least 1"):
        P.make_plan(r, c, 0)
    with pytest.raises(UsageError, match=r"--mfu must be in \(0, 1\]"):
        P.make_plan(r, c, 4, mfu=1.01)


def test_plot_without_matplotlib_says_how_to_install(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    res = cli("plan", "1b", "-c", "a100", "-N", "16", "--plot", str(tmp_path / "g.png"))
    assert "pip install 'olmoctl[plot]'" in _one_line_error(res, code=1)
    assert not (tmp_path / "g.png").exists()


def test_plan_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from olmoctl.cli.main import main\n"
        "try:\n"
        "    main(['plan', '7b', '-c', 'lumi', '-N', '256', '--simulate', '--seeds', '4'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'submitit', 'fabric')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_absurd_scale_warns_instead_of_crashing(cli) -> None:
    res = cli("plan", "7b", "-c", "lumi", "-N", "200000", "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["expected"]["wall_s"] is None  # never finishes in the closed form
    assert any("goodput near zero" in w for w in data["warnings"])
    assert any("above cluster 'lumi''s limit of 1024" in w for w in data["warnings"])


def test_one_gpu_keeps_every_block_gathered() -> None:
    """On one GPU no block reshards after forward (train/model/parallelize.py): the estimate
    counts every block's unsharded bf16 copy, and on two GPUs only the prefetch window."""
    import yaml

    from olmoctl.core.launch.memory import estimate
    from olmoctl.paths import data_dir
    from olmoctl.schemas import ClusterProfile, Recipe

    recipe = Recipe.model_validate(yaml.safe_load((data_dir("recipes") / "1b.yaml").read_text()))
    prof = yaml.safe_load((data_dir("clusters") / "h100.yaml").read_text())
    one = estimate(recipe, ClusterProfile.model_validate({**prof, "tasks_per_node": 1}), 1)
    m = recipe.model
    block = 4 * m.d_model**2 + 3 * m.d_model * m.mlp_hidden
    root = m.embedding_size * m.d_model
    assert one.gathered_gb == pytest.approx((16 * block + root) * 2 / 1e9 + root * 6 / 1e9)
    two = estimate(recipe, ClusterProfile.model_validate({**prof, "tasks_per_node": 2}), 1)
    assert two.gathered_gb == pytest.approx(root * (2 * 2 + 2 + 4) / 1e9)  # prefetch 1
