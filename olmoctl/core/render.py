"""Render a RunSpec into the exact batch script that `launch` submits (pure: no I/O but the
template). The task command is a slot: the same script serves a submitit job and a plain
`python -m olmoctl.train` job."""

from __future__ import annotations

import shlex
from functools import lru_cache

import jinja2

from olmoctl import __version__, paths
from olmoctl.schemas import RunSpec
from olmoctl.schemas import contract as rd

TEMPLATE = "sbatch.sh.j2"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # shell, not HTML: quoting is explicit through the q filter
    )
    env.filters["q"] = lambda v: shlex.quote(str(v))
    return env


def spec_path(spec: RunSpec) -> str:
    return f"{spec.run_dir}/{rd.SPEC_FILE}"


def log_dir(spec: RunSpec) -> str:
    return f"{spec.run_dir}/{rd.LOGS_DIR}"


def train_command(spec: RunSpec) -> str:
    """The plain job command: every rank runs the trainer on the run's spec."""
    return shlex.join([spec.cluster.python, "-u", "-m", "olmoctl.train", spec_path(spec)])


def submitit_command(spec: RunSpec) -> str:
    """What submitit runs on every rank: it unpickles olmoctl.train's entry and calls it."""
    folder = shlex.quote(f"{spec.run_dir}/submitit")
    return " ".join([spec.cluster.python, "-u -m submitit.core._submit", folder])


def default_command(spec: RunSpec) -> str:
    """The command `launch` puts in the slot: submitit's on Slurm, the trainer locally."""
    return submitit_command(spec) if spec.cluster.scheduler == "slurm" else train_command(spec)


def render(spec: RunSpec, task_command: str | None = None) -> str:
    """The batch script for `spec`; `task_command` is shell text (already quoted), by
    default exactly what `launch` submits."""
    cluster = spec.cluster
    return (
        _env()
        .get_template(TEMPLATE)
        .render(
            version=__version__,
            spec=spec,
            recipe=spec.recipe,
            cluster=cluster,
            slurm=cluster.scheduler == "slurm",
            ind="  " if cluster.scheduler == "slurm" else "",
            log_dir=log_dir(spec),
            batch_log=rd.batch_log_name("%j"),
            rank_log=rd.rank_log_name("%j", "%t"),
            master_port=rd.master_port_shell("SLURM_JOB_ID"),  # = the job's master_port_for
            local_master_port=rd.LOCAL_MASTER_PORT,
            task_command=task_command or default_command(spec),
        )
    )
