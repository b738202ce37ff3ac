"""Render a RunSpec into the exact batch script that `launch` submits (pure: no I/O but the
template). The task command is a slot: the same script serves a submitit job and a plain
`python -m olmoctl.train` job."""

from __future__ import annotations

import shlex
from functools import lru_cache

import jinja2

from olmoctl import __version__, paths
from olmoctl.core.shellquote import quote, quote_expandable, sbatch_word, shell_name
from olmoctl.schemas import RunSpec
from olmoctl.schemas import contract as rd

TEMPLATE = "sbatch.sh.j2"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # shell, not HTML: every value goes through one of these filters
    )
    env.filters["q"] = quote  # one shell word, literal
    env.filters["qx"] = quote_expandable  # double-quoted, only $NAME/${NAME} expand
    env.filters["word"] = sbatch_word  # #SBATCH lines and the header: a bare safe word
    env.filters["ident"] = shell_name  # a variable name (export NAME=)
    return env


def spec_path(spec: RunSpec) -> str:
    return f"{spec.run_dir}/{rd.SPEC_FILE}"


def log_dir(spec: RunSpec) -> str:
    return f"{spec.run_dir}/{rd.LOGS_DIR}"


def train_command(spec: RunSpec) -> str:
    """The plain job command: every rank runs the trainer on the run's spec."""
    return shlex.join([python(spec), "-u", "-m", "olmoctl.train", spec_path(spec)])


def submitit_command(spec: RunSpec) -> str:
    """What submitit runs on every rank: it unpickles olmoctl.train's entry and calls it."""
    folder = quote(f"{spec.run_dir}/submitit")
    return " ".join([quote(python(spec)), "-u -m submitit.core._submit", folder])


def python(spec: RunSpec) -> str:
    """The cluster's python command, unquoted (quote() it for shell text; submitit gets
    quote(python) as its `python`, which it pastes into the command as shell text)."""
    return spec.cluster.python


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
