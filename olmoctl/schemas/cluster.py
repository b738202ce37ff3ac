"""A cluster profile: where and how a job runs (scheduler, hardware, container, environment)."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator, model_validator

from olmoctl.errors import shown
from olmoctl.schemas.base import Schema
from olmoctl.schemas.bounds import (
    DAY_S,
    STR_MAX,
    Float,
    Int,
    SlurmMem,
    SlurmTime,
    parse_time,
)
from olmoctl.schemas.burnin import BurninConfig
from olmoctl.schemas.pyenv import PythonEnv
from olmoctl.schemas.shellsafe import Expandable, Name, Text, Word, check_env_name

# HH:MM:SS, or D-HH:MM:SS as Slurm accepts it (ASCII digits: \d takes any script's).
TIME_RE = r"^([0-9]+-)?[0-9]{1,3}:[0-9]{2}:[0-9]{2}$"
# Environment variable names (the shell's, checked by the one validator, shellsafe).
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


# How the ranks enter the image (core/launch/containers.py renders each; docs/clusters.md):
#   singularity, apptainer  `singularity exec -B BIND... IMAGE.sif CMD` (LUMI, Frontier and
#                HPC sites in general); the job's environment passes through, and
#                SINGULARITYENV_X / APPTAINERENV_X set X inside only.
#   podman      `podman run --rm --network=host --ipc=host --env ... -v BIND... IMAGE CMD`;
#                nothing passes unless named, so the script names what the job reads.
#   pyxis       NVIDIA's Slurm plugin over enroot: no exec prefix but srun's own flags
#                (--container-image=IMAGE --container-mounts=BIND,...), the environment
#                passes through and --container-env names what must win over the image's.
#   bwrap       bubblewrap over a root filesystem directory (IMAGE, "/" = this machine's,
#                read-only); the environment passes through. The dev-container profile.
Runtime = Literal["singularity", "apptainer", "podman", "pyxis", "bwrap"]


class ContainerConfig(Schema):
    runtime: Runtime = "singularity"
    # Each may use $NAME / ${NAME} of the compute node's environment, nothing else.
    image: Expandable
    # Bind mounts, "src", "src:dst" or "src:dst:opts" (bwrap: opts ro or rw).
    binds: list[Expandable] = Field(default_factory=list)
    # More arguments of the runtime (pyxis: of srun), in order; each starts a new line of
    # the script when it begins with "-".
    exec_args: list[Expandable] = Field(default_factory=list)
    # Set inside the container only, the way its runtime takes them (singularity:
    # SINGULARITYENV_NAME, bwrap: --setenv...; core/launch/containers.py): what the runtime does
    # not pass from the host (LD_LIBRARY_PATH, PATH) or what the image sets itself. Values
    # as in `env`.
    env: dict[str, Expandable] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            check_env_name(key, "container.env: variable name")
        return v

    @model_validator(mode="after")
    def _binds_fit_the_runtime(self) -> ContainerConfig:
        for bind in self.binds:
            parts = bind.split(":")
            if not parts[0] or len(parts) > 3 or any(not p for p in parts[1:]):
                raise ValueError(
                    f"container.binds: {shown(bind)} is not src, src:dst or src:dst:opts"
                )
            if self.runtime == "bwrap" and len(parts) == 3 and parts[2] not in ("ro", "rw"):
                raise ValueError(
                    f"container.binds: {shown(bind)}: bwrap takes the options ro or rw only"
                )
            if self.runtime == "pyxis" and "," in bind:
                raise ValueError(
                    f"container.binds: {shown(bind)}: pyxis joins binds with commas, "
                    "so a bind cannot hold one"
                )
        return self


class SSHConfig(Schema):
    host: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=253)  # DNS's limit
    user: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_.-]*$", max_length=32)
    port: Int = Field(default=22, gt=0, lt=65536)
    identity_file: Text | None = None
    # Host keys are checked against this file (default ~/.ssh/known_hosts), never added.
    known_hosts: Text | None = None
    # How olmoctl runs on the login node (inside a venv, a container...): a shell command
    # there by design (docs/remote.md), never part of a batch script.
    remote_olmoctl: Text = "olmoctl"


class EnergyConfig(Schema):
    """For `olmoctl plan`: power, efficiency and carbon of the site."""

    node_power_kw: Float = Field(default=3.0, gt=0, le=1000)
    pue: Float = Field(default=1.1, ge=1, le=10)
    carbon_kg_per_kwh: Float = Field(default=0.4, ge=0, le=10)
    node_mtbf_hours: Float = Field(default=50_000.0, ge=0.01, le=1e9)
    fs_write_gbps: Float = Field(default=10.0, ge=1e-3, le=1e6)  # GB/s, aggregate for one job
    # Reads of a checkpoint on restart, GB/s; None: the same as fs_write_gbps.
    fs_read_gbps: Float | None = Field(default=None, ge=1e-3, le=1e6)
    # After a node dies: seconds until the job is declared failed, seconds queued before
    # the next attempt starts, seconds from its start to the first step (before the load).
    detect_s: Float = Field(default=300.0, ge=0, le=30 * DAY_S)
    queue_wait_s: Float = Field(default=600.0, ge=0, le=30 * DAY_S)
    restart_s: Float = Field(default=180.0, ge=0, le=30 * DAY_S)


class TimeLimit(Schema):
    """A site's wall-time limit for jobs of min_nodes..max_nodes nodes (None: no upper end),
    e.g. OLCF Frontier's scheduling bins. `launch` refuses a longer --time (--force: launch
    anyway); `plan` uses it as the attempt length."""

    min_nodes: Int = Field(ge=1, le=1_000_000)
    max_nodes: Int | None = Field(default=None, ge=1, le=1_000_000)
    max_time: SlurmTime = Field(pattern=TIME_RE)

    @model_validator(mode="after")
    def _range(self) -> TimeLimit:
        if self.max_nodes is not None and self.max_nodes < self.min_nodes:
            raise ValueError(f"max_nodes ({self.max_nodes}) is below min_nodes ({self.min_nodes})")
        return self

    def covers(self, nodes: int) -> bool:
        return self.min_nodes <= nodes and (self.max_nodes is None or nodes <= self.max_nodes)

    @property
    def nodes_text(self) -> str:
        if self.max_nodes is None:
            return f"{self.min_nodes}+ nodes"
        if self.max_nodes == self.min_nodes:
            return f"{self.min_nodes} node{'s' if self.min_nodes > 1 else ''}"
        return f"{self.min_nodes}-{self.max_nodes} nodes"


class ClusterProfile(Schema):
    name: Name
    description: Text = ""
    scheduler: Literal["slurm", "local"] = "slurm"
    vendor: Literal["nvidia", "amd", "cpu"]
    gpu_type: Text = ""
    # Peak dense bf16 throughput of one device (one GCD on MI250X), for `plan`.
    peak_tflops_bf16: Float = Field(default=0.0, ge=0, le=1e6)
    gpu_memory_gb: Float = Field(default=0.0, ge=0, le=1e6)

    partition: Name | None = None
    account: Name | None = None
    account_required: bool = False
    qos: Name | None = None

    gpus_per_node: Int = Field(default=0, ge=0, le=1024)
    tasks_per_node: Int = Field(default=1, gt=0, le=1024)
    cpus_per_task: Int = Field(default=1, gt=0, le=65536)
    # Slurm --mem value ("0" = all of the node's memory); None leaves it to the site.
    mem: SlurmMem | None = None
    max_nodes: Int = Field(default=1, gt=0, le=1_000_000)
    max_time: SlurmTime = Field(default="24:00:00", pattern=TIME_RE)
    default_time: SlurmTime = Field(default="01:00:00", pattern=TIME_RE)
    # The site's wall-time limit by job size (node-count ranges that do not overlap); a
    # node count no range covers has max_time only.
    time_limits: list[TimeLimit] = Field(default_factory=list, max_length=1000)
    # sbatch --time-min: Slurm may start the job sooner with a limit between this and
    # --time (backfill); the run saves on the signal and is requeued, so nothing is lost.
    min_time: SlurmTime | None = Field(default=None, pattern=TIME_RE)
    max_array_size: Int = Field(default=1000, gt=0, le=4_000_001)  # Slurm's MaxArraySize cap
    exclusive: bool = False
    # Seconds before the time limit at which Slurm sends USR2 so the job can checkpoint.
    signal_before_s: Int = Field(default=120, ge=0, le=65535)  # sbatch --signal's limit
    # srun --cpu-bind value, e.g. LUMI's per-GCD masks.
    cpu_bind: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_:,x]+$", max_length=STR_MAX)
    srun_args: list[Word] = Field(default_factory=list)
    sbatch_args: list[Word] = Field(default_factory=list)

    distributed_backend: Literal["nccl", "gloo"] = "nccl"
    # The NCCL/RCCL network plugin library (a name the dynamic loader finds, e.g.
    # librccl-net.so, or a path; $NAME may refer to the job's environment): without it RCCL
    # falls back to TCP sockets. Only `olmoctl doctor` reads it (it must load in the job).
    network_plugin: Expandable | None = None
    container: ContainerConfig | None = None
    # `module use` folders before the loads (e.g. LUMI's /appl/local/laifs/modules).
    module_use: list[Expandable] = Field(default_factory=list)
    modules: list[Word] = Field(default_factory=list)
    # Sourced before the first `module` command when `module` is not defined: a job sent
    # from a non-login shell (olmoctl over SSH, cron) has no `module` function unless the
    # script defines it (docs/clusters.md, "module in a batch job"). The default is what a
    # login shell reads, where Lmod's install puts its init (/etc/profile.d/z00_lmod.sh);
    # a site's own file, e.g. /usr/share/lmod/lmod/init/bash, reads nothing else.
    module_init: Expandable = Field(default="/etc/profile", min_length=1)
    # Values may use $NAME / ${NAME} (e.g. OMP_NUM_THREADS: $SLURM_CPUS_PER_TASK), nothing else.
    env: dict[str, Expandable] = Field(default_factory=dict)
    # The python command on the nodes: one word (a name on PATH or a path), quoted the same
    # in every script branch.
    python: Word = "python"
    # How that python gets its packages (schemas/pyenv.py): module loads + a conda env or
    # venv activated in the batch script, or provided by the image or the submitting shell.
    # A Slurm profile needs this or an absolute `python` (core/launch/checks.py).
    python_env: PythonEnv | None = None

    # Filesystem roots on the cluster's shared filesystem.
    runs_root: Expandable
    data_root: Expandable = ""

    # Failure handling (olmoctl watch / resume). A RUNNING job with no training progress
    # for hang_timeout_s is a hang; a node with node_failure_threshold failures is excluded
    # from later attempts on this cluster; max_requeues bounds time-limit/preemption
    # requeues of one job (submitit's max_num_timeout).
    hang_timeout_s: Int = Field(default=1800, gt=0, le=30 * DAY_S)
    node_failure_threshold: Int = Field(default=1, gt=0, le=1_000_000)
    max_requeues: Int = Field(default=3, ge=0, le=1000)
    # Node checks before step 1 (olmoctl.train.burnin) and the spare-node default.
    burnin: BurninConfig = BurninConfig()

    ssh: SSHConfig | None = None
    # Weights & Biases on this site's nodes (when a recipe turns it on with
    # metrics.wandb.project): offline writes RUN_DIR/wandb/ for a later `wandb sync`
    # (compute nodes rarely reach the internet); online only where they do.
    wandb_mode: Literal["offline", "online"] = "offline"
    energy: EnergyConfig = EnergyConfig()

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            check_env_name(key, "env: variable name")
        return v

    @model_validator(mode="after")
    def _python_env_fits(self) -> ClusterProfile:
        pe = self.python_env
        if pe is None:
            return self
        if self.container is not None and pe.activates:
            # The batch script runs on the host; the ranks' python is the image's.
            raise ValueError(
                "python_env: modules, conda and venv are set up on the host, but the ranks run "
                "in container.image: set python to the interpreter inside the image (e.g. "
                "/opt/venv/bin/python) or python_env.provided_by: image"
            )
        if self.container is None and pe.provided_by == "image":
            raise ValueError("python_env.provided_by: image, but the profile has no container")
        return self

    @field_validator("time_limits")
    @classmethod
    def _no_overlap(cls, v: list[TimeLimit]) -> list[TimeLimit]:
        ordered = sorted(v, key=lambda r: r.min_nodes)
        for a, b in itertools.pairwise(ordered):
            if a.max_nodes is None or a.max_nodes >= b.min_nodes:
                raise ValueError(
                    f"the ranges {a.nodes_text} and {b.nodes_text} overlap; "
                    "give each node count one limit"
                )
        return ordered

    @field_validator("runs_root")
    @classmethod
    def _absolute_root(cls, v: str) -> str:
        # Run directories must not depend on where olmoctl was started.
        if not (v.startswith("/") or v == "~" or v.startswith("~/")):
            raise ValueError(
                f"{shown(v)} is not an absolute path; start it with / or ~/ "
                "(e.g. ~/olmoctl-runs or /scratch/{account}/{user}/runs)"
            )
        return v

    @property
    def max_time_s(self) -> int:
        return parse_time(self.max_time)

    def time_limit_for(self, nodes: int) -> TimeLimit | None:
        """The site's limit for a job of `nodes` nodes, if the profile has one."""
        return next((r for r in self.time_limits if r.covers(nodes)), None)

    def max_time_s_for(self, nodes: int) -> int:
        """The longest time a job of `nodes` nodes may ask for: max_time, or less by policy."""
        rule = self.time_limit_for(nodes)
        return min(self.max_time_s, parse_time(rule.max_time)) if rule else self.max_time_s
