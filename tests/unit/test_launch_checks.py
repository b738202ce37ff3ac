"""Launch-time checks (issue 15, item 5): GPU memory fit with activations (the estimate `plan`
shows), the site's time limit by node count, batch divisibility with the nearest fixes, and
the free-space warning. Each refusal is one line, exit 2, before anything is written; each
proposed fix, applied the way the user would type it, passes the same check."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from olmoctl import diskspace
from olmoctl.backends.files import LOCAL
from olmoctl.core.launch import checks as launch_checks
from olmoctl.core.launch import memory
from olmoctl.core.launch import submit as launch
from olmoctl.core.launch.specs import SpecConfig
from olmoctl.core.plan import inputs as plan_inputs
from olmoctl.core.plan.costs import make_plan
from olmoctl.errors import UsageError
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.batch import batch_fixes, batch_problem, divisors
from olmoctl.schemas.errors import model_paths, validate

OLMOCTL = str(Path(sys.executable).parent / "olmoctl")
ACCOUNT = "cluster.account=project_1"


# The recipes' sharding and checkpointing as these tests assume them (the 65B recipe as the
# paper describes it: hybrid within a node), whatever the shipped recipes say today.
HYBRID = ["fsdp.strategy=hybrid", "fsdp.shard_group_size=0", "fsdp.activation_checkpointing=true"]
NO_AC = ["fsdp.activation_checkpointing=false"]


def _load(recipe: str, cluster: str, *overrides: str) -> tuple[Recipe, ClusterProfile]:
    return plan_inputs.load(recipe, cluster, [ACCOUNT, *overrides])


def _apply(fix: str, nodes: int) -> tuple[list[str], int]:
    """A fix as the user types it (`-o K=V ...`, `--nodes N`) -> overrides and nodes."""
    words = shlex.split(fix)
    overrides = [words[i + 1] for i, w in enumerate(words) if w == "-o"]
    if "--nodes" in words:
        nodes = int(words[words.index("--nodes") + 1])
    return overrides, nodes


# ---- memory ---------------------------------------------------------------------------------
def test_block_activations_are_counted_tensor_by_tensor() -> None:
    r, _ = _load("7b", "lumi", "train.attention=auto")
    d, f, h = 4096, 11008, 32
    # bf16: 2 LayerNorms (input, output, mean/rstd), qkv, roped q/k, SDPA out + log-sum-exp,
    # out-proj input; SwiGLU: fused up/gate, silu(gate), product.
    assert memory.block_activation_bytes_per_token(r) == 22 * d + 8 * f + 4 * h + 16
    fp32 = _train(r, precision="fp32")
    assert memory.block_activation_bytes_per_token(fp32) == 44 * d + 16 * f + 4 * h + 16
    # the math SDPA backend keeps the T x T scores (and their pre-softmax copy)
    math = _train(r, attention="math")
    extra = memory.block_activation_bytes_per_token(math) - memory.block_activation_bytes_per_token(
        r
    )
    assert extra == 2 * 2 * h * 2048


def _train(r: Recipe, **changes: object) -> Recipe:
    return r.model_copy(update={"train": r.train.model_copy(update=changes)})


def test_the_head_with_the_chunked_and_the_plain_loss() -> None:
    r, _ = _load("1b", "a100", "train.cross_entropy=chunked", "train.ce_chunk_tokens=4096")
    d, v, tokens = 2048, 50304, 8 * 2048
    norm = (2 * d + 8) * tokens
    chunked = norm + 2 * d * tokens + 4 * v * d + (2 + 12) * v * 4096
    assert memory.head_bytes(r, tokens) == chunked
    plain = memory.head_bytes(_train(r, cross_entropy="plain"), tokens)
    assert plain == norm + 2 * d * tokens + 12 * v * tokens
    assert plain > 2 * chunked  # the full fp32 logits are what the chunked loss avoids


def test_activations_scale_with_micro_batch_and_checkpointing_cuts_them() -> None:
    r, c = _load("7b", "a100", "fsdp.activation_checkpointing=false")
    tokens, per_token = 2048, memory.block_activation_bytes_per_token(r)
    one = memory.activation_bytes(r, checkpointing=False, micro_batch=1)
    assert one == 32 * per_token * tokens + memory.head_bytes(r, tokens)
    four = memory.activation_bytes(r, checkpointing=False, micro_batch=4)
    assert four - memory.head_bytes(r, 4 * tokens) == 4 * 32 * per_token * tokens
    ac = memory.activation_bytes(r, checkpointing=True, micro_batch=1)
    # 32 blocks keep their input (2 bytes x d per token) + one block recomputed + the head
    assert ac == 32 * 2 * 4096 * tokens + per_token * tokens + memory.head_bytes(r, tokens)
    assert ac < one / 3
    mem = memory.estimate(r, c, 27)
    full = memory.activation_bytes(r, checkpointing=False, micro_batch=2)
    assert mem.activations_gb == pytest.approx(full / 1e9)
    other = memory.activation_bytes(r, checkpointing=True, micro_batch=2)
    assert mem.activations_other_gb == pytest.approx(other / 1e9)
    parts = mem.params_gb + mem.grads_gb + mem.optimizer_gb + mem.gathered_gb
    assert mem.total_gb == pytest.approx(parts + mem.activations_gb + mem.runtime_gb)


def test_plan_and_launch_share_one_estimate() -> None:
    r, c = _load("65b", "lumi", *HYBRID)
    p = make_plan(r, c, 256)
    assert p.memory == memory.estimate(r, c, 256) and not p.memory.fits
    problem = launch_checks.memory_problem(r, c, 256)
    assert problem is not None and any(w.startswith(problem) for w in p.warnings)


def test_65b_on_256_lumi_nodes_is_refused_with_fixes_that_fit() -> None:
    r, c = _load("65b", "lumi", *HYBRID)
    problem = launch_checks.memory_problem(r, c, 256)
    assert problem is not None
    assert "per GPU" in problem and "64 GB" in problem and "hybrid-sharded over 8" in problem
    fixes = [f.args for f in memory.fixes(r, c, 256)]
    # more nodes and a smaller micro batch cannot help hybrid sharding within a node at
    # micro batch 1; a larger shard group or full sharding do
    assert fixes == ["-o fsdp.shard_group_size=32", "-o fsdp.strategy=full"]
    for fix in fixes:
        assert fix in problem
        _fix_passes("65b", "lumi", 256, fix, *HYBRID)


def _fix_passes(recipe: str, cluster: str, nodes: int, fix: str, *base: str) -> None:
    """Applied the way a user types it, the fix builds a spec that the launch check passes."""
    overrides, n = _apply(fix, nodes)
    spec = SpecConfig.from_catalog(
        recipe, cluster, nodes=n, overrides=[ACCOUNT, *base, *overrides]
    ).build()
    assert launch_checks.check(spec) == [], fix


@pytest.mark.parametrize(
    ("recipe", "cluster", "nodes", "base", "expected"),
    [
        # 7B without checkpointing at micro batch 8 on 40 GB A100s: checkpointing alone fits,
        # so does a micro batch of 2 (the largest that fits and divides 10 per GPU)
        ("7b", "a100", 27, [*NO_AC, "train.global_batch_size=2160", "train.micro_batch_size=10"],
         ["-o fsdp.activation_checkpointing=true", "-o train.micro_batch_size=2"]),
        # 65B fully sharded over 2 nodes: the state needs more GPUs; 4 nodes is the fewest
        # that fit and keep 2048 divisible
        ("65b", "lumi", 2, ["fsdp.strategy=full"], ["--nodes 4"]),
        # 65B fully sharded, checkpointing off: on, or with fewer sequences per step
        ("65b", "lumi", 256, ["fsdp.strategy=full", "fsdp.activation_checkpointing=false"],
         ["-o fsdp.activation_checkpointing=true"]),
    ],
)  # fmt: skip
def test_each_proposed_fix_fits(
    recipe: str, cluster: str, nodes: int, base: list[str], expected: list[str]
) -> None:
    r, c = _load(recipe, cluster, *base)
    assert not memory.estimate(r, c, nodes).fits
    fixes = [f.args for f in memory.fixes(r, c, nodes)]
    assert fixes[: len(expected)] == expected, fixes
    for fix in fixes:
        _fix_passes(recipe, cluster, nodes, fix, *base)


def test_fixes_only_name_options_that_exist() -> None:
    """Every `-o KEY=...` a fix proposes is a recipe key that train/ applies."""
    keys = set(model_paths(Recipe))
    assert "fsdp.activation_checkpointing" in keys
    for recipe, cluster, nodes, base in (
        ("65b", "lumi", 256, HYBRID),
        ("7b", "a100", 27, [*NO_AC, "train.global_batch_size=2160", "train.micro_batch_size=10"]),
        ("65b", "lumi", 2, ["fsdp.strategy=full", "fsdp.activation_checkpointing=false"]),
    ):
        r, c = _load(recipe, cluster, *base)
        for fix in memory.fixes(r, c, nodes):
            for override in _apply(fix.args, nodes)[0]:
                assert override.split("=")[0] in keys, fix


def test_parallelize_applies_activation_checkpointing() -> None:
    """The option the fit check proposes is real: the trainer wraps each block."""
    src = (Path(launch.__file__).parents[2] / "train" / "model" / "parallelize.py").read_text()
    assert "model.activation_checkpointing = fsdp.activation_checkpointing" in src
    model_src = (Path(launch.__file__).parents[2] / "train" / "model" / "olmo.py").read_text()
    assert "torch.utils.checkpoint.checkpoint(" in model_src


def test_nothing_fits_says_so() -> None:
    r, c = _load("65b", "lumi", "cluster.gpu_memory_gb=1", *HYBRID)
    problem = launch_checks.memory_problem(r, c, 256)
    assert problem is not None and "no change of checkpointing" in problem


def test_cpu_profiles_are_not_checked() -> None:
    r, c = plan_inputs.load("tiny", "dev")
    assert not memory.checked(c) and launch_checks.memory_problem(r, c, 3) is None


# ---- time limits by node count --------------------------------------------------------------
@pytest.mark.parametrize(
    ("nodes", "limit"), [(1, 7200), (91, 7200), (92, 21600), (183, 21600), (184, 43200)]
)
def test_frontier_policy(nodes: int, limit: int) -> None:
    _, c = _load("1b", "frontier")
    assert c.max_time_s_for(nodes) == limit


def test_time_above_the_bin_is_refused_with_the_limit() -> None:
    _, c = _load("1b", "frontier")
    problem = launch_checks.time_problem(c, 64, "06:00:00")
    assert problem == (
        "--time 06:00:00 is above cluster 'frontier''s limit of 02:00:00 for 1-91 nodes (64 "
        "asked): use --time 02:00:00 (or run on 92-183 nodes, whose limit is 06:00:00)"
    )
    assert launch_checks.time_problem(c, 184, "12:00:00") is None
    assert launch_checks.time_problem(c, 64, "02:00:00") is None


def test_default_time_is_cut_to_the_node_count_limit() -> None:
    # 512 GPUs: 4 sequences each of the 1B's 2048, so micro batch 4 (the recipe's 8 needs
    # 256 GPUs or fewer).
    overrides = [ACCOUNT, "cluster.default_time=12:00:00", "train.micro_batch_size=4"]
    spec = SpecConfig.from_catalog("1b", "frontier", nodes=64, overrides=overrides).build()
    assert spec.time == "02:00:00" and launch_checks.check(spec) == []


@pytest.mark.parametrize(
    ("nodes", "micro", "expected"),
    [(64, 4, "02:00:00"), (128, 2, "06:00:00"), (256, 1, "12:00:00")],
)
def test_default_time_is_the_bins_limit_for_the_node_count(
    nodes: int, micro: int, expected: str
) -> None:
    """Issue 22 item 5: Frontier's default --time is the UG:1378-1389 bin's limit for the
    job's size (6 h at 128 nodes, not bin 5's 2 h); shorter only when asked for."""
    overrides = [ACCOUNT, f"train.micro_batch_size={micro}"]
    config = SpecConfig.from_catalog("1b", "frontier", nodes=nodes, overrides=overrides)
    assert config.build().time == expected
    assert config.replace(time="01:30:00").build().time == "01:30:00"


def test_frontier_max_nodes_is_the_guides_figure() -> None:
    _, c = _load("1b", "frontier")
    assert c.max_nodes == 9472  # issue 22 item 5, as the issue quotes the Frontier UG


def test_plan_uses_the_limit_for_its_node_count() -> None:
    r, c = _load("1b", "frontier")
    assert make_plan(r, c, 64).costs.time_limit_s == 7200


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ([{"min_nodes": 1, "max_nodes": 100, "max_time": "02:00:00"},
          {"min_nodes": 50, "max_time": "06:00:00"}], "1-100 nodes and 50+ nodes overlap"),
        ([{"min_nodes": 9, "max_nodes": 3, "max_time": "02:00:00"}], "max_nodes (3) is below"),
        ([{"min_nodes": 1, "max_time": "2 hours"}], "use a Slurm time"),
        ([{"min_nodes": 0, "max_time": "02:00:00"}], "min_nodes"),
    ],
)  # fmt: skip
def test_time_limits_are_validated(limits: list[dict], expected: str) -> None:
    from olmoctl.core.launch import catalog
    from olmoctl.core.launch.yamlio import load_yaml_mapping

    data = load_yaml_mapping(catalog.find("clusters", "frontier").path)
    with pytest.raises(UsageError, match=re.escape(expected)):
        validate(ClusterProfile, {**data, "time_limits": limits}, "frontier.yaml")


def test_launch_from_is_checked_like_a_new_launch(user_env, tmp_path: Path) -> None:
    """`launch --from RUN -o ...` is a new run: a time above the policy added by the
    override is refused, --force takes it (resume of RUN itself keeps its recorded spec)."""
    from olmoctl.core.launch import repro
    from olmoctl.store import Store
    from tests.unit.test_store import FakeBackend

    store = Store()
    runs = f"cluster.runs_root={tmp_path / 'runs'}"
    spec = launch.prepare(store, "tiny", "dev", nodes=1, name="r", time_limit=None,
                          overrides=[runs])  # fmt: skip
    launch.submit_attempt(store, spec, FakeBackend(), new_run=True)

    policy = "cluster.time_limits=[{min_nodes: 1, max_time: '00:05:00'}]"
    with pytest.raises(UsageError, match=r"--time 00:10:00 is above .* limit of 00:05:00"):
        repro.plan_from(store, "r", name="b", overrides=[policy])
    assert store.run_names() == ["r"]
    forced = repro.plan_from(store, "r", name="b", overrides=[policy], force=True)
    assert forced.spec.time == "00:10:00" and launch_checks.problems(forced.spec)


# ---- batch divisibility ---------------------------------------------------------------------
def test_divisors() -> None:
    assert (
        divisors(1) == [1] and divisors(0) == [] and divisors(36) == [1, 2, 3, 4, 6, 9, 12, 18, 36]
    )


def test_the_papers_a100_run_gets_its_batch_proposed() -> None:
    """27 nodes x 8 A100 = 216 GPUs: 2048 does not divide; OLMo ran it with 2160
    (allenai/OLMo configs/mcli/v1_5-mix-medium-mitch-ish.yaml:33)."""
    problem = batch_problem(2048, 4, 27, 8, 64)
    assert problem is not None and "216 GPUs x train.micro_batch_size 4 = 864" in problem
    for text in (
        "-o train.global_batch_size=1944 -o train.micro_batch_size=3 (or micro batch 1, 9)",
        "-o train.global_batch_size=2160 -o train.micro_batch_size=2 (or micro batch 1, 5, 10)",
        "-o train.global_batch_size=1728 or 2592 (micro batch 4)",
        "--nodes 16 or 32",
    ):
        assert text in problem
    spec = SpecConfig.from_catalog(
        "1b", "a100", nodes=27,
        overrides=["train.global_batch_size=2160", "train.micro_batch_size=2"],
    ).build()  # fmt: skip
    assert spec.world_size == 216 and spec.grad_accum_steps == 5
    assert launch_checks.check(spec) == []


def _fixed(fix: str, g: int, m: int, n: int) -> list[tuple[int, int, int]]:
    """(global batch, micro batch, nodes) for each setting a batch fix offers."""
    words = shlex.split(fix.split(" (")[0])
    out = []
    if words[0] == "--nodes":
        return [(g, m, int(x)) for x in words[1:] if x != "or"]
    vals = dict(w.split("=") for w in words if "=" in w)
    gs = [int(vals["train.global_batch_size"])] if "train.global_batch_size" in vals else [g]
    gs += [int(x) for x in words[words.index("or") + 1 :]] if "or" in words else []
    ms = [int(vals.get("train.micro_batch_size", m))]
    if "(or micro batch" in fix:
        ms += [int(x) for x in fix.split("(or micro batch ")[1].rstrip(")").split(", ")]
    for g2 in gs:
        for m2 in ms:
            out.append((g2, m2, n))
    return out


@settings(max_examples=300, deadline=None)
@given(
    g=st.integers(1, 5000),
    m=st.integers(1, 16),
    n=st.integers(1, 64),
    tpn=st.sampled_from([1, 4, 8]),
)
def test_every_proposed_batch_fix_divides(g: int, m: int, n: int, tpn: int) -> None:
    if batch_problem(g, m, n, tpn, 128) is None:
        assert g % (n * tpn * m) == 0
        return
    fixes = batch_fixes(g, m, n, tpn, 128)
    assert fixes
    for fix in fixes:
        for g2, m2, n2 in _fixed(fix, g, m, n):
            assert g2 % (n2 * tpn * m2) == 0, (fix, g2, m2, n2)
            assert n2 <= 128


# ---- free space -----------------------------------------------------------------------------
def test_free_bytes_reads_the_filesystem_of_the_nearest_existing_folder(tmp_path: Path) -> None:
    st_ = os.statvfs(tmp_path)
    free = diskspace.free_bytes(tmp_path / "not" / "made" / "yet")
    assert free is not None and abs(free - st_.f_bavail * st_.f_frsize) < 64 * 2**20


def test_low_space_warning() -> None:
    assert diskspace.low_space_warning("/r", 10**12, 10**11, "x") is None
    line = diskspace.low_space_warning("/r", 5 * 10**9, 36 * 10**9, "4 checkpoints of 9.0 GB")
    assert line == (
        "5.0 GB free on the filesystem holding /r, less than 4 checkpoints of 9.0 GB (36.0 GB):"
        " free space, lower checkpoint.keep_last, or choose another cluster.runs_root; saves "
        "will fail when it fills"
    )


HUGE = ["model.d_model=16384", "model.n_heads=64", "model.n_layers=2000", "model.mlp_hidden=65536"]


def test_space_warning_on_a_real_filesystem(user_env, tmp_path: Path) -> None:
    small = SpecConfig.from_catalog(
        "tiny", "dev", overrides=[f"cluster.runs_root={tmp_path}"]
    ).build()
    assert launch_checks.space_warning([small], LOCAL) is None
    big = SpecConfig.from_catalog(
        "tiny", "dev", overrides=[f"cluster.runs_root={tmp_path}", *HUGE]
    ).build()
    need, what = launch_checks.space_needed([big])
    assert need == 4 * 12 * big.recipe.model.num_params() and what.startswith("4 checkpoints")
    assert need > (diskspace.free_bytes(tmp_path) or 0)  # 7 T parameters: no disk here holds it
    line = launch_checks.space_warning([big], LOCAL)
    assert line is not None and f"holding {big.run_dir}" in line and "4 checkpoints" in line
    need2, what2 = launch_checks.space_needed([big, small])
    assert need2 > need and what2 == "the checkpoints of 2 runs"


def test_permanent_checkpoints_count_for_the_whole_run() -> None:
    from types import SimpleNamespace as NS

    r, _ = _load("7b", "lumi")
    assert launch_checks.checkpoints_kept(r) == r.checkpoint.keep_last + 1
    # checkpoint.permanent_interval_steps (the retention setting, where the schema has it)
    ckpt = NS(keep_last=3, permanent_interval_steps=1000)
    kept = NS(checkpoint=ckpt, train=NS(total_steps=10500))
    assert launch_checks.checkpoints_kept(kept) == 3 + 1 + 10  # type: ignore[arg-type]


def test_remote_free_space_comes_with_the_reachability_check(user_env, tmp_path: Path) -> None:
    """On a remote cluster the login node answers statvfs in the request that checks Slurm:
    launch still makes two requests, and the warning comes before anything is recorded."""
    from olmoctl.backends import ssh, ssh_serve
    from olmoctl.backends.ssh_link import Link
    from olmoctl.store import Store
    from tests.unit.test_remote import CONFIG, REPO, _FakeSlurm, _InProcessServer

    link = Link(CONFIG)
    link.server = _InProcessServer(ssh_serve.LoginNode(slurm=_FakeSlurm()))  # type: ignore[assignment]
    remote = ssh.SSHBackend(CONFIG, link)
    (user_env / "clusters").mkdir(parents=True)
    profile = (REPO / "clusters" / "dev.yaml").read_text().replace("name: dev", "name: far")
    (user_env / "clusters" / "far.yaml").write_text(profile + "ssh:\n  host: login.example\n")
    store = Store()
    spec = launch.prepare(
        store, "tiny", "far", nodes=1, name="big", time_limit=None,
        overrides=[f"cluster.runs_root={tmp_path / 'runs'}", *HUGE],
    )  # fmt: skip
    warnings: list[str] = []

    def warn(text: str) -> None:
        assert store.run_names() == []  # told before the run is recorded
        warnings.append(text)

    launch.submit_attempt(store, spec, remote, new_run=True, on_warning=warn)
    assert remote.round_trips == 2
    assert len(warnings) == 1 and "4 checkpoints" in warnings[0]


# ---- the real command line ------------------------------------------------------------------
def _olmoctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OLMOCTL, *args], capture_output=True, text=True, timeout=300)


def _refused(p: subprocess.CompletedProcess[str], *texts: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr and p.stdout == "", p.stderr
    for text in texts:
        assert text in lines[0], (text, lines[0])
    return lines[0]


LUMI_65B = ["65b", "--cluster", "lumi", "--nodes", "256", "-o", ACCOUNT]
LUMI_65B += [word for o in HYBRID for word in ("-o", o)]
# The 1B at micro batch 4 (the recipe's 8 fits 2048 sequences on at most 256 GPUs).
MB4 = ["-o", "train.micro_batch_size=4"]
FRONTIER_6H = ["1b", "--cluster", "frontier", "--nodes", "64", "--time", "06:00:00", "-o", ACCOUNT]
FRONTIER_6H += MB4
A100_PAPER = ["1b", "--cluster", "a100", "--nodes", "27", *MB4]


@pytest.mark.parametrize(
    ("args", "texts"),
    [
        (LUMI_65B, ["GB per GPU", "-o fsdp.strategy=full", "or --force"]),
        (FRONTIER_6H, ["limit of 02:00:00 for 1-91 nodes", "use --time 02:00:00", "or --force"]),
        (A100_PAPER, ["-o train.global_batch_size=2160 -o train.micro_batch_size=2"]),
    ],
    ids=["memory", "time", "batch"],
)
@pytest.mark.parametrize("command", ["render", "launch"])
def test_cli_refuses_before_writing_anything(
    user_env, tmp_path: Path, command: str, args: list[str], texts: list[str]
) -> None:
    _refused(_olmoctl(command, *args), *texts)
    assert not (tmp_path / "state").exists()  # no store, no run directory, nothing submitted


@pytest.mark.parametrize("args", [LUMI_65B, FRONTIER_6H], ids=["memory", "time"])
def test_cli_force_renders_with_a_warning(user_env, args: list[str]) -> None:
    p = _olmoctl("render", *args, "--force")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("#!/bin/bash")
    assert "warning: launch would refuse this without --force" in p.stderr


def test_cli_batch_errors_are_not_forcible(user_env) -> None:
    _refused(_olmoctl("render", *A100_PAPER, "--force"), "train.global_batch_size=2160")


def test_cli_the_papers_a100_configuration_renders(user_env) -> None:
    p = _olmoctl(
        "render", *A100_PAPER, "-o", "train.global_batch_size=2160", "-o",
        "train.micro_batch_size=2",
    )  # fmt: skip
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "#SBATCH --nodes=27" in p.stdout


def test_cli_sweep_checks_each_point(user_env, tmp_path: Path) -> None:
    sweep = ["sweep", *LUMI_65B, "--grid", "fsdp.strategy=full,hybrid", "--dry-run"]
    _refused(_olmoctl(*sweep), "sweep point 1 (fsdp.strategy=hybrid) is invalid", "GB per GPU")
    p = _olmoctl(*sweep, "--force")
    assert p.returncode == 0, p.stderr
    assert "sweep point 65b-sweep-1: launching anyway (--force)" in p.stderr
    assert "65b-sweep-0: launching anyway" not in p.stderr


def test_cli_launch_warns_about_free_space(user_env, tmp_path: Path) -> None:
    args = ["launch", "tiny", "--cluster", "local", "--dry-run", "-o"]
    huge = [word for h in HUGE for word in ("-o", h)]
    p = _olmoctl(*args, f"cluster.runs_root={tmp_path / 'runs'}", *huge)
    assert p.returncode == 0, p.stderr
    (warning,) = [ln for ln in p.stderr.splitlines() if ln.startswith("warning:")]
    assert "GB free on the filesystem holding" in warning and "4 checkpoints" in warning
    p = _olmoctl(*args, f"cluster.runs_root={tmp_path / 'runs'}")
    assert p.returncode == 0 and "warning" not in p.stderr, p.stderr
