"""Render a RunSpec into the exact batch script that `launch` submits (pure: no I/O but the
template). The task command is a slot: the same script serves a submitit job and a plain
`python -m olmoctl.train` job. What goes there by default, and whether the script is a
Slurm batch script, the run's backend says (job_command, batch_script).

The template is olmoctl's own file (shipped data, templates/): an error in it (a syntax
error, a name it uses that render() does not pass) is olmoctl's failure, not the user's
input, so it is one line naming the file and line, exit status 1 (OlmoctlError)."""

from __future__ import annotations

import traceback
from functools import lru_cache
from pathlib import Path

import jinja2

from olmoctl import __version__, paths
from olmoctl.backends.jobfiles import burnin_command, spec_path, submitit_command, train_command
from olmoctl.backends.registry import backend_for
from olmoctl.core.launch import containers
from olmoctl.errors import OlmoctlError, flat
from olmoctl.schemas import RunSpec
from olmoctl.schemas import contract as rd
from olmoctl.schemas.bounds import parse_time
from olmoctl.schemas.shellsafe import HOST_RE
from olmoctl.shellquote import quote, quote_expandable, sbatch_word, shell_name
from olmoctl.train.runtime.exit_codes import EXIT_REQUEUE

__all__ = ["log_dir", "render", "rerender_args", "spec_path", "submitit_command", "train_command"]

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


def container_env(spec: RunSpec) -> list[tuple[str, str]]:
    """(host variable, value) to export for the profile's container.env: the runtime's
    prefixed names (singularity, apptainer) or the names themselves (pyxis); bwrap and
    podman take them as arguments instead (core/launch/containers.py)."""
    return containers.host_exports(spec.cluster)


def time_min(spec: RunSpec) -> str | None:
    """sbatch --time-min, when the profile has one below the run's --time (Slurm refuses a
    minimum above the limit)."""
    m = spec.cluster.min_time
    return m if m is not None and parse_time(m) < parse_time(spec.time) else None


def module_init(spec: RunSpec) -> str | None:
    """The file the script sources when `module` is not defined, for a profile whose script
    calls `module` (module_use, modules, python_env.modules); None for one that does not."""
    c = spec.cluster
    uses = c.module_use or c.modules or (c.python_env is not None and c.python_env.modules)
    return c.module_init if uses else None


def log_dir(spec: RunSpec) -> str:
    return f"{spec.run_dir}/{rd.LOGS_DIR}"


def rerender_args(spec: RunSpec, task_command: str | None = None) -> list[str] | None:
    """What follows `olmoctl render --from-spec` in the header's hint, for the script with
    `task_command` in its slot: RUN_DIR/spec.json (launch writes it before each submission),
    `--plain` for train_command where that is not the backend's own; None for any other
    slot (doctor's preflight), which `render` cannot reproduce."""
    own = backend_for(spec).job_command(spec)
    if task_command is None or task_command == own:
        return [spec_path(spec)]
    if task_command == train_command(spec):
        return [spec_path(spec), "--plain"]
    return None


def render(spec: RunSpec, task_command: str | None = None) -> str:
    """The batch script for `spec`; `task_command` is shell text (already quoted), by
    default exactly what `launch` submits."""
    try:
        return _render(spec, task_command)
    except jinja2.TemplateError as e:
        raise OlmoctlError(template_error(e)) from None


def template_error(e: jinja2.TemplateError) -> str:
    """One line: the template file and line (its own for a syntax error, else the template
    frame of the traceback) and what Jinja said."""
    where = getattr(e, "filename", None) or ""
    line = getattr(e, "lineno", None)
    if not where or line is None:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.endswith(".j2")]
        if frames:
            where, line = frames[-1].filename, frames[-1].lineno
    where = where or str(paths.data_dir("templates") / TEMPLATE)
    at = f"{where}:{line}" if line else where
    what = type(e).__name__
    return flat(
        f"{at}: {what}: {e.message or e}; this is olmoctl's own batch-script template "
        f"(reinstall olmoctl, or undo the edit to {Path(where).name})",
        600,
    )


def _render(spec: RunSpec, task_command: str | None) -> str:
    cluster = spec.cluster
    backend = backend_for(spec)
    burnin = backend.batch_script and cluster.burnin.enabled
    return (
        _env()
        .get_template(TEMPLATE)
        .render(
            rerender=rerender_args(spec, task_command),
            version=__version__,
            spec=spec,
            recipe=spec.recipe,
            cluster=cluster,
            pyenv=cluster.python_env,
            slurm=backend.batch_script,
            ind="  " if backend.batch_script else "",
            log_dir=log_dir(spec),
            batch_log=rd.batch_log_name("%j"),
            rank_log=rd.rank_log_name("%j", "%t"),
            master_port=rd.master_port_shell("SLURM_JOB_ID"),  # = the job's master_port_for
            local_master_port=rd.LOCAL_MASTER_PORT,
            container=containers.plan(cluster),
            pyxis_var=containers.PYXIS_NAME_VAR,
            module_init=module_init(spec),
            requeue_mark=f"{spec.run_dir}/{rd.REQUEUE_READY}",
            exit_requeue=EXIT_REQUEUE,
            time_min=time_min(spec),
            container_env=container_env(spec),
            task_command=task_command or backend.job_command(spec),
            burnin=burnin,
            # in-allocation restarts: a batch job with spares (which need the burn-in)
            restarts=cluster.burnin.restarts_in_allocation if burnin and spec.spare_nodes else 0,
            restart_backoff_s=cluster.burnin.restart_backoff_s,
            burnin_dir=f"{spec.run_dir}/{rd.BURNIN_DIR}",
            burnin_command=burnin_command(spec),
            # the step's limit: every phase at its limit, in whole minutes, plus one
            burnin_minutes=int(cluster.burnin.budget_s() // 60) + 2,
            host_re=f"^{HOST_RE.pattern}$",
            # nodes the spec excludes stay excluded when the job requeues itself
            exclude_prefix="".join(f"{sbatch_word(n)}," for n in spec.exclude_nodes),
        )
    )
