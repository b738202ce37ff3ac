"""Issue 15 item 3: each setting of the reference scripts is in the shipped profile and
rendered into the batch script, with the value it has in the source. The tables name the
source line; the profiles carry the same citation as a comment.

Values are compared as bash sees them: the rendered `export` lines and the reference's own
text are each evaluated by bash in one fixed environment (so `${USER}` in the reference and
`$USER` in the profile compare equal)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from olmoctl.core.launch import specs
from olmoctl.core.launch.render import render
from tests.conftest import REPO

# allenai/OLMo at 214aea5, scripts/lumi/mitch-ish-7b.sh (the LUMI 7B run).
OLMO = "mitch-ish-7b.sh"
# (variable as rendered, value as written in the source, source)
LUMI_ENV = [
    ("OMP_NUM_THREADS", "$SLURM_CPUS_PER_TASK", f"{OLMO}:19"),
    ("MPICH_GPU_SUPPORT_ENABLED", "1", f"{OLMO}:20"),
    ("NCCL_SOCKET_IFNAME", "hsn", f"{OLMO}:21"),
    ("NCCL_NET_GDR_LEVEL", "3", f"{OLMO}:22"),
    ("MIOPEN_USER_DB_PATH", "/tmp/${USER}-miopen-cache-${SLURM_JOB_ID}", f"{OLMO}:23"),
    ("MIOPEN_CUSTOM_CACHE_DIR", "${MIOPEN_USER_DB_PATH}", f"{OLMO}:24"),
    ("CXI_FORK_SAFE", "1", f"{OLMO}:25"),
    ("CXI_FORK_SAFE_HP", "1", f"{OLMO}:26"),
    ("FI_CXI_DISABLE_CQ_HUGETLB", "1", f"{OLMO}:27"),
    ("GPU_MAX_HW_QUEUES", "8", f"{OLMO}:28"),
    ("FI_CXI_DEFAULT_CQ_SIZE", "131072", f"{OLMO}:30-31"),
    # Not any more (issue 22 item 2): ROCM_PATH and LD_LIBRARY_PATH with libfabric 1.15.2.0
    # inside the container (OLMO:35-36); the AI Factory image and its bindings module set
    # them (test_lumi_follows_todays_guidance).
    ("HF_DATASETS_OFFLINE", "1", f"{OLMO}:41"),
    # Issue 22 item 3: fail fast, and HPE's settings for RCCL on Slingshot (the profile's
    # HPE: HPE Cray's RCCL/NCCL-over-libfabric guidance, as OLCF's GUIDE:706-726 reproduces
    # it; NCCL-ENV: NCCL's "Environment Variables", NCCL_NET: no fallback to sockets).
    ("NCCL_NET", "AWS Libfabric", "HPE; NCCL-ENV NCCL_NET"),
    ("FI_CXI_DISABLE_HOST_REGISTER", "1", "HPE"),
    ("FI_MR_CACHE_MONITOR", "userfaultfd", "HPE"),
    ("FI_CXI_DEFAULT_TX_SIZE", "2048", "HPE"),
    ("FI_CXI_RX_MATCH_MODE", "hybrid", "HPE"),
    ("NCCL_CROSS_NIC", "1", "HPE"),
]
LUMI_LINES = [
    ("#SBATCH --ntasks-per-node=8", f"{OLMO}:6"),
    ("#SBATCH --gpus-per-node=8", f"{OLMO}:7"),
    ("#SBATCH --time=48:00:00", f"{OLMO}:9"),
    ("#SBATCH --time-min=24:00:00", f"{OLMO}:10"),
    ("#SBATCH --mem=0", f"{OLMO}:11"),
    ("#SBATCH --partition=standard-g", f"{OLMO}:12"),
    ("  --distribution=block:block \\", f"{OLMO}:49"),
    ("  --kill-on-bad-exit=1 \\", f"{OLMO}:50"),
    ("  singularity exec \\", f"{OLMO}:52"),
    # Issue 22 item 2, LAIG (Lumi-supercomputer/LUMI-AI-Guide): the AI Factory modules and
    # the bindings module in place of LUMI/22.08 (OLMO:14) and OLMO:56-58's binds of /opt/cray,
    # libcxi and libjson-c, which the module binds as the host has them.
    ('module use "/appl/local/laifs/modules"', "LAIG"),
    ("module load lumi-aif-singularity-bindings", "LAIG"),
]

# olcf/olcf-user-docs at 2745903, software/analytics/pytorch_frontier.rst (the guide).
GUIDE = "pytorch_frontier.rst"
FRONTIER_ENV = [
    ("LD_LIBRARY_PATH", "$CRAY_LD_LIBRARY_PATH:$LD_LIBRARY_PATH", f"{GUIDE}:480-481"),
    ("NCCL_CROSS_NIC", "1", f"{GUIDE}:712"),
    ("NCCL_NET_GDR_LEVEL", "PHB", f"{GUIDE}:713"),
    ("NCCL_SOCKET_IFNAME", "hsn0,hsn1,hsn2,hsn3", f"{GUIDE}:714"),
    ("HSA_FORCE_FINE_GRAIN_PCIE", "1", f"{GUIDE}:717"),
    ("FI_MR_CACHE_MONITOR", "kdreg2", f"{GUIDE}:718"),
    ("FI_CXI_DISABLE_HOST_REGISTER", "1", f"{GUIDE}:719"),
    ("FI_CXI_DEFAULT_CQ_SIZE", "131072", f"{GUIDE}:720"),
    ("FI_CXI_RDZV_PROTO", "alt_read", f"{GUIDE}:721"),
    ("FI_CXI_RDZV_EAGER_SIZE", "0", f"{GUIDE}:722"),
    ("FI_CXI_RDZV_THRESHOLD", "0", f"{GUIDE}:723"),
    ("FI_CXI_RDZV_GET_MIN", "0", f"{GUIDE}:724"),
    ("FI_CXI_DEFAULT_TX_SIZE", "2048", f"{GUIDE}:725"),
    ("FI_CXI_RX_MATCH_MODE", "hybrid", f"{GUIDE}:726"),
    ("NCCL_NET", "AWS Libfabric", "HPE; NCCL-ENV NCCL_NET"),  # issue 22 item 3
]
FRONTIER_LINES = [
    ("#SBATCH --network=disable_rdzv_get", f"{GUIDE}:471 and :616"),
    (
        "module load PrgEnv-gnu/8.7.0 cpe/26.03 rocm/7.1.1 rccl-net-plugin craype-accel-amd-gfx90a",
        f"{GUIDE}:473-478",
    ),
    ("  --gpu-bind=closest \\", f"{GUIDE}:496"),
    ("#SBATCH --cpus-per-task=7", f"{GUIDE}:496 (-c7)"),
    # Issue 22 item 1: GUIDE's batch scripts load miniforge3 and `source activate` the env.
    ("module load miniforge3", "GUIDE (python_env)"),
    ('source activate "/lustre/orion/p1/proj-shared/alice/envs/olmoctl"', "GUIDE (python_env)"),
]

# What bash sees while the script runs (a job's variables, as Slurm and the modules set).
JOB_ENV = {
    "PATH": "/usr/bin:/bin",
    "USER": "alice",
    "SLURM_JOB_ID": "4242",
    "SLURM_CPUS_PER_TASK": "7",
    "CRAY_LD_LIBRARY_PATH": "/opt/cray/pe/lib64",
    "LD_LIBRARY_PATH": "/opt/rocm/lib",
}


def _script(cluster: str, **kw: object) -> str:
    return render(specs.resolve("7b", cluster, nodes=2, overrides=["cluster.account=p1"], **kw))


def _exported(script: str) -> dict[str, str]:
    """The environment after the script's `export` lines, as bash computes it."""
    exports = "\n".join(ln for ln in script.splitlines() if ln.startswith("export "))
    return _bash_env(exports)


def _bash_env(text: str) -> dict[str, str]:
    res = subprocess.run(
        ["bash", "-euc", text + "\nenv -0"], env=JOB_ENV, capture_output=True, check=True
    )
    pairs = (item.split(b"=", 1) for item in res.stdout.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def _reference(table: list[tuple[str, str, str]]) -> dict[str, str]:
    """The table's values as bash evaluates the reference's own lines, in order."""
    lines = [f'export {name}="{value}"' for name, value, _ in table]
    return _bash_env("\n".join(lines))


@pytest.mark.parametrize(
    ("cluster", "table"), [("lumi", LUMI_ENV), ("frontier", FRONTIER_ENV)], ids=["lumi", "frontier"]
)
def test_every_reference_variable_is_rendered_with_its_value(
    user_env: Path, cluster: str, table: list[tuple[str, str, str]]
) -> None:
    script = _script(cluster)
    got = _exported(script)
    want = _reference(table)
    for name, _, source in table:
        assert name in got, f"{name} ({source}) is not exported by the {cluster} script"
        assert got[name] == want[name], (name, source, got[name], want[name])


@pytest.mark.parametrize(
    ("cluster", "lines"),
    [("lumi", LUMI_LINES), ("frontier", FRONTIER_LINES)],
    ids=["lumi", "frontier"],
)
def test_every_reference_slurm_line_is_rendered(
    user_env: Path, cluster: str, lines: list[tuple[str, str]]
) -> None:
    script = _script(cluster).splitlines()
    for line, source in lines:
        assert line in script, f"{line!r} ({source}) is not in the {cluster} script"


@pytest.mark.parametrize(
    ("cluster", "table"), [("lumi", LUMI_ENV), ("frontier", FRONTIER_ENV)], ids=["lumi", "frontier"]
)
def test_every_setting_carries_its_source_in_the_profile(
    cluster: str, table: list[tuple[str, str, str]]
) -> None:
    """The profile line that sets each variable names the source line the table cites."""
    text = (REPO / "clusters" / f"{cluster}.yaml").read_text().splitlines()
    for name, _, source in table:
        key = name.removeprefix("SINGULARITYENV_")
        at = next(i for i, ln in enumerate(text) if ln.strip().startswith(f"{key}:"))
        above = [ln for ln in text[max(0, at - 3) : at] if ln.strip().startswith("#")]
        context = " ".join([text[at], *above])
        cited = source.replace(GUIDE, "GUIDE")  # the frontier profile's short name for it
        assert cited in context, (name, source, context)


def test_time_min_never_exceeds_the_time_asked_for(user_env: Path) -> None:
    """Slurm refuses --time-min above --time: a shorter run drops the minimum."""
    assert "#SBATCH --time-min=24:00:00" in _script("lumi", time="30:00:00")
    assert "--time-min" not in _script("lumi", time="12:00:00")
    assert "--time-min" not in _script("lumi", time="24:00:00")


def test_container_env_reaches_apptainer_under_its_own_prefix(user_env: Path) -> None:
    over = [
        "cluster.account=p1",
        "cluster.container.runtime=apptainer",
        "cluster.container.env.ROCM_PATH=/opt/rocm",
    ]
    spec = specs.resolve("tiny", "lumi", overrides=over)
    script = render(spec)
    assert 'export APPTAINERENV_ROCM_PATH="/opt/rocm"' in script
    assert "SINGULARITYENV_" not in script


@pytest.mark.parametrize("cluster", ["a100", "h100"])
def test_nvidia_profiles_keep_nccl_modest(user_env: Path, cluster: str) -> None:
    """Only what the sources ask for: NCCL's defaults otherwise (see the profile comments)."""
    got = _exported(_script(cluster))
    nccl = {k for k in got if k.startswith(("NCCL_", "TORCH_NCCL_", "CUDA_"))}
    assert nccl == {"NCCL_NET", "TORCH_NCCL_ASYNC_ERROR_HANDLING"}
    assert got["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"  # torchrun's default for its workers
    # Issue 22 item 3 (NCCL-ENV, NCCL_NET): IB or nothing, never a silent fall back to sockets.
    assert got["NCCL_NET"] == "IB"
    # Issue 22 item 4: no guessed NIC list; NCCL's own detection (doctor shows its pick).
    assert "NCCL_IB_HCA" not in got


def test_lumi_follows_todays_guidance(user_env: Path) -> None:
    """Issue 22 item 2: no 2023 stack and no libfabric version written into the script; the
    AI Factory image (LAIG) and no container env over what its bindings module sets."""
    script = _script("lumi")
    assert "LUMI/22.08" not in script and "/opt/cray/libfabric/" not in script
    assert "SINGULARITYENV_LD_LIBRARY_PATH" not in script
    assert "/appl/local/laifs/containers/" in script
    lines = script.splitlines()
    assert lines.index("module load lumi-aif-singularity-bindings") < next(
        i for i, ln in enumerate(lines) if ln.startswith("srun ")
    )


@pytest.mark.parametrize(
    ("cluster", "citation"),
    [("lumi", "LAIG"), ("frontier", "GUIDE"), ("h100", "OLMo-core"), ("a100", "OLMo-core")],
)
def test_python_env_carries_its_source_in_the_profile(cluster: str, citation: str) -> None:
    """Issue 22 item 1: each shipped GPU profile says how its ranks get Python, citing why."""
    text = (REPO / "clusters" / f"{cluster}.yaml").read_text().splitlines()
    at = next(i for i, ln in enumerate(text) if ln.startswith("python_env:"))
    above = " ".join(ln for ln in text[max(0, at - 8) : at] if ln.startswith("#"))
    assert citation in above, (cluster, above)
