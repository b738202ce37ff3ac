"""What `launch`, `render` and `sweep` check about a new run before anything is recorded or
submitted, beyond the schemas: that it fits in GPU memory (core/launch/memory.py, the estimate
`plan` shows) and that --time is within the site's limit for its node count
(cluster.time_limits). Each refusal is one line with concrete fixes (exit 2); `--force`
launches anyway and the problem becomes a warning. And the free-space warning: a run dir
whose filesystem cannot hold the checkpoints the run will keep. A Slurm profile whose ranks
would run a bare `python` with nothing set up is refused outright (python_problem)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from olmoctl.core.launch import memory
from olmoctl.errors import UsageError, shown
from olmoctl.schemas import ClusterProfile, Recipe, RunSpec
from olmoctl.schemas.bounds import parse_time

if TYPE_CHECKING:
    from olmoctl.backends.files import RunFiles

FORCE_HINT = "or --force to launch anyway"


def memory_problem(recipe: Recipe, cluster: ClusterProfile, nodes: int) -> str | None:
    """Why the run does not fit in GPU memory, with what would; None if it fits (or the
    profile gives no GPU memory to check against)."""
    if not memory.checked(cluster):
        return None
    mem = memory.estimate(recipe, cluster, nodes)
    if mem.fits:
        return None
    state = mem.params_gb + mem.grads_gb + mem.optimizer_gb
    ac = "with" if mem.activation_checkpointing else "without"
    head = (
        f"{recipe.name} on {nodes} node{'s' if nodes > 1 else ''} of {cluster.name} needs "
        f"~{mem.total_gb:.1f} GB per GPU (state {state:.1f} {mem.strategy}-sharded over "
        f"{mem.shard_size}, FSDP buffers {mem.gathered_gb:.1f}, activations "
        f"{mem.activations_gb:.1f} at micro batch {mem.micro_batch_size} {ac} activation "
        f"checkpointing, runtime {mem.runtime_gb:g}), more than the {mem.gpu_memory_gb:g} GB "
        f"of a {cluster.gpu_type or 'GPU'}"
    )
    fixes = memory.fixes(recipe, cluster, nodes)
    if not fixes:
        return f"{head}; no change of checkpointing, micro batch, nodes or sharding fits it"
    return head + "; fits with " + ", ".join(f"{f.args} (~{f.total_gb:.1f} GB)" for f in fixes)


def time_problem(cluster: ClusterProfile, nodes: int, time: str) -> str | None:
    """Why `time` is above the site's limit for a job of `nodes` nodes, with the longest
    allowed and the node counts that allow `time`; None if within it."""
    rule = cluster.time_limit_for(nodes)
    asked = parse_time(time)
    if rule is None or asked <= parse_time(rule.max_time):
        return None
    longer = [
        r for r in cluster.time_limits if parse_time(r.max_time) >= asked and r.min_nodes > nodes
    ]
    other = ""
    if longer:
        other = f" (or run on {longer[0].nodes_text}, whose limit is {longer[0].max_time})"
    return (
        f"--time {time} is above cluster {shown(cluster.name)}'s limit of {rule.max_time} for "
        f"{rule.nodes_text} ({nodes} asked): use --time {rule.max_time}{other}"
    )


def python_problem(cluster: ClusterProfile) -> str | None:
    """Why the ranks of a Slurm profile would run a bare `python` with nothing set up (a
    batch job does not inherit the login shell's conda/venv activation, and the base env has
    no torch); None when `python` is absolute or python_env says how it is set up."""
    if cluster.scheduler != "slurm" or cluster.python_env is not None:
        return None
    if cluster.python.startswith("/"):
        return None
    return (
        f"cluster {shown(cluster.name)}: python: its ranks would run a bare "
        f"{shown(cluster.python)} with nothing set up; set python_env (modules with conda or "
        "venv, or provided_by: image or submitter) or python to an absolute interpreter "
        '(docs/clusters.md, "The ranks\' Python")'
    )


def problems(spec: RunSpec) -> list[str]:
    """The forcible problems of a new run's spec (memory fit, time limit), each one line."""
    found = [
        memory_problem(spec.recipe, spec.cluster, spec.nodes),
        time_problem(spec.cluster, spec.allocated_nodes, spec.time),  # spares are allocated too
    ]
    return [p for p in found if p is not None]


def check(spec: RunSpec, *, force: bool = False) -> list[str]:
    """Refuse (UsageError, one line) a new run that would not fit or not be allowed to run
    that long; with `force`, return the same problems as warnings instead."""
    python = python_problem(spec.cluster)
    if python is not None:  # not forcible: every rank would fail on its first import
        raise UsageError(python)
    found = problems(spec)
    if found and not force:
        raise UsageError("; also ".join(found) + f"; {FORCE_HINT}")
    return [f"launching anyway (--force): {p}" for p in found]


def checkpoints_kept(recipe: Recipe) -> int:
    """The most checkpoints a run of `recipe` holds at once: checkpoint.keep_last, the one
    being written before the oldest goes, and the permanent ones its whole run keeps
    (checkpoint.permanent_interval_steps, where the recipe schema has it)."""
    c = recipe.checkpoint
    every = getattr(c, "permanent_interval_steps", 0) or 0
    permanent = recipe.train.total_steps // every if every else 0
    return c.keep_last + 1 + permanent


def space_needed(specs: list[RunSpec]) -> tuple[int, str]:
    """Bytes the runs' checkpoints will hold at most (checkpoints_kept each), and those
    words for a message."""
    need = sum(checkpoints_kept(s.recipe) * memory.checkpoint_bytes(s.recipe) for s in specs)
    first = specs[0].recipe
    size = memory.checkpoint_bytes(first) / memory.GB
    if len(specs) == 1:
        return need, f"{checkpoints_kept(first)} checkpoints of {size:,.1f} GB"
    return need, f"the checkpoints of {len(specs)} runs"


def space_warning(specs: list[RunSpec], files: RunFiles) -> str | None:
    """One line when the filesystem of the (first) run directory has less free space than
    the runs' checkpoints need; None when it has room or cannot be asked (`files`: where the
    run directory is: this machine, or the login node of a remote cluster)."""
    from olmoctl.diskspace import low_space_warning

    if not specs:
        return None
    path = specs[0].run_dir
    free = files.free_bytes(path)
    if free is None:
        return None
    need, what = space_needed(specs)
    return low_space_warning(path, free, need, what)
