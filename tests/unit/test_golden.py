"""Golden files of every shipped cluster x {tiny, 1b, 7b}: byte-exact, bash -n, shellcheck.

Regenerate after an intended change:
    OLMOCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from olmoctl.core.launch import catalog, specs
from olmoctl.core.launch.render import render

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CLUSTERS = ["lumi", "frontier", "a100", "h100", "dev", "dev-container", "local"]
RECIPES = ["tiny", "1b", "7b"]
ACCOUNT = "project_465000000"


def _render(cluster: str, recipe: str) -> str:
    profile = catalog.load_cluster(cluster)
    # Two nodes where it makes sense; tiny's batch of 48 does not split over 16 GPUs.
    nodes = 1 if recipe == "tiny" and profile.tasks_per_node > 1 else min(2, profile.max_nodes)
    overrides = [f"cluster.account={ACCOUNT}"] if profile.account_required else []
    return render(specs.resolve(recipe, cluster, nodes=nodes, overrides=overrides))


def test_shipped_profiles_and_recipes_are_all_covered() -> None:
    assert sorted(catalog.available("clusters")) == sorted(CLUSTERS)
    assert {"tiny", "1b", "7b", "65b"} <= set(catalog.available("recipes"))


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_golden(cluster: str, recipe: str, user_env: Path, tmp_path: Path) -> None:
    text = _render(cluster, recipe)
    golden = GOLDEN / f"{cluster}-{recipe}.sh"
    if os.environ.get("OLMOCTL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; run with OLMOCTL_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs; see the module docstring"

    script = tmp_path / "job.sh"
    script.write_text(text)
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: scripts/setup installs Debian's shellcheck"
    res = subprocess.run([shellcheck, "-s", "bash", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_lumi_7b_carries_every_lumi_setting(cli) -> None:
    res = cli(
        "render", "7b", "--cluster", "lumi", "--nodes", "128", "-o", f"cluster.account={ACCOUNT}"
    )
    assert res.code == 0, res.err
    s = res.out
    for line in [
        f"#SBATCH --account={ACCOUNT}",
        "#SBATCH --partition=standard-g",
        "#SBATCH --nodes=128",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=7",
        "#SBATCH --mem=0",
        "#SBATCH --time=48:00:00",
        "--cpu-bind=mask_cpu:0x00fe000000000000,0xfe00000000000000,0x0000000000fe0000,"
        "0x00000000fe000000,0x00000000000000fe,0x000000000000fe00,0x000000fe00000000,"
        "0x0000fe0000000000",
        "singularity exec",
        f'-B "/project/{ACCOUNT}:/project/{ACCOUNT}"',
        f'-B "/flash/{ACCOUNT}:/flash/{ACCOUNT}"',
        f'-B "/scratch/{ACCOUNT}:/scratch/{ACCOUNT}"',
        # Issue 22 item 2: the host's Slingshot libraries come from LUMI-AI-Guide's
        # bindings module, not binds written here.
        'module use "/appl/local/laifs/modules"',
        "module load lumi-aif-singularity-bindings",
        'export NCCL_NET="AWS Libfabric"',
        'export NCCL_SOCKET_IFNAME="hsn"',
        'export NCCL_NET_GDR_LEVEL="3"',
        'export MIOPEN_USER_DB_PATH="/tmp/$USER-miopen-cache-$SLURM_JOB_ID"',
        'export MIOPEN_CUSTOM_CACHE_DIR="$MIOPEN_USER_DB_PATH"',
        'export CXI_FORK_SAFE="1"',
        'export CXI_FORK_SAFE_HP="1"',
        'export FI_CXI_DISABLE_CQ_HUGETLB="1"',
        'export FI_CXI_DEFAULT_CQ_SIZE="131072"',
        'export GPU_MAX_HW_QUEUES="8"',
        'export MPICH_GPU_SUPPORT_ENABLED="1"',
        'export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"',
        "#SBATCH --signal=B:USR2@",
    ]:
        assert line in s, line


def test_render_out_writes_the_same_bytes(cli, tmp_path: Path) -> None:
    printed = cli("render", "tiny", "-c", "dev", "-N", "2")
    out = tmp_path / "job.sh"
    written = cli("render", "tiny", "-c", "dev", "-N", "2", "--out", str(out))
    assert printed.code == written.code == 0
    assert out.read_text() == printed.out
    assert os.access(out, os.X_OK)


def test_task_command_is_a_slot(user_env: Path) -> None:
    from olmoctl.core.launch.render import submitit_command, train_command

    spec = specs.resolve("tiny", "dev", nodes=2)
    submitted = render(spec)  # what launch submits: submitit's job-side command
    plain = render(spec, task_command=train_command(spec))
    assert submitit_command(spec) in submitted
    assert f"python -u -m olmoctl.train {spec.run_dir}/spec.json" in plain
    # The same script but the slot, and the header's hint (--plain renders it again).
    hint = f"# Re-render instead of editing: olmoctl render --from-spec {spec.run_dir}/spec.json"
    assert f"{hint}\n" in submitted and f"{hint} --plain\n" in plain
    again = plain.replace(train_command(spec), submitit_command(spec))
    assert again.replace(f"{hint} --plain\n", f"{hint}\n") == submitted
