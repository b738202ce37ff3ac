"""What `olmoctl plan` starts from: the recipe and cluster (with overrides, but without the
launch-only checks of the run-spec builder), and what earlier runs observed."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from olmoctl.core.launch.checks import memory_problem
from olmoctl.core.launch.specs import SpecConfig
from olmoctl.errors import UsageError, shown
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.batch import batch_problem
from olmoctl.schemas.bounds import STEPS_MAX
from olmoctl.schemas.run import spares_refusal
from olmoctl.store.models import Attempt

DEFAULT_MFU = 0.40


@dataclass(frozen=True)
class Observed:
    """Figures measured by earlier runs; None where the store has none."""

    mfu: float | None = None  # median MFU of earlier runs of this recipe on this cluster
    node_mtbf_hours: float | None = None  # node-hours run / node failures seen
    source: str = "none"  # e.g. "store: 5 runs, 212 node-days"
    problem: str | None = None  # why the store could not be read (plan goes on without)


def observed(recipe: str, cluster: str, state_dir: str | None = None) -> Observed:
    """Observed MFU and node MTBF for RECIPE on CLUSTER from the state store (None where it
    has nothing to say; a missing store is not created)."""
    import statistics

    from olmoctl.store import Store, StoreBusy, StoreError

    store = Store(state_dir)
    if not store.exists():
        return Observed()
    try:
        mfus = []
        for run in store.runs(cluster=cluster):
            mfu = run.summary.get("mfu")
            if run.recipe == recipe and isinstance(mfu, (int, float)) and 0 < mfu <= 1:
                mfus.append(float(mfu))
        rows = store.ended_attempts(cluster)
    except (StoreError, StoreBusy) as e:  # plan needs no store: plan without observations
        store.close()
        return Observed(problem=str(e))
    store.close()
    failures, node_hours = failure_rate(rows)
    mtbf = node_hours / failures if failures else None
    parts = []
    if mfus:
        parts.append(f"MFU median of {len(mfus)} run(s)")
    if mtbf is not None:
        parts.append(f"{failures} node failure(s) in {node_hours:.1f} node-hours")
    return Observed(
        mfu=statistics.median(mfus) if mfus else None,
        node_mtbf_hours=mtbf,
        source="store: " + "; ".join(parts) if parts else "none",
    )


def failure_rate(attempts: Iterable[Attempt]) -> tuple[int, float]:
    """(node failures, training node-hours) of ended attempts: node MTBF = hours / failures.
    A failure is an attempt that ended NODE_FAIL, an in-allocation restart's too (its
    RESIZING record): one interruption of training, which is what plan models, however
    many nodes it took. Not node_health's counts: those add burn-in rejections and manual
    exclusions, and `nodes --clear` forgets them. Hours count the training nodes only: an
    idle spare that dies interrupts nothing."""
    failures, seconds = 0, 0.0
    for a in attempts:
        if a.started_at is None or a.ended_at is None:
            continue
        seconds += max(0, a.nodes) * max(0.0, a.ended_at - a.started_at)
        failures += a.klass == "NODE_FAIL"
    return failures, seconds / 3600


def interval_option(value: str | None) -> tuple[bool, list[str]]:
    """--checkpoint-interval: (auto, the override a number of steps stands for)."""
    if value is None:
        return False, []
    if value == "auto":
        return True, []
    text = value
    if len(text) <= 13 and text.isdecimal() and text.isascii() and 0 < int(text) <= STEPS_MAX:
        return False, [f"checkpoint.interval_steps={int(text)}"]
    raise UsageError(
        f"--checkpoint-interval must be a number of steps (1 to {STEPS_MAX:,}) or auto, "
        f"got {shown(value)}"
    )


def load(
    recipe_ref: str, cluster_ref: str, overrides: list[str] | None = None
) -> tuple[Recipe, ClusterProfile]:
    """Recipe and cluster with the -o overrides applied and validated. Unlike a launch, a
    plan needs no account and may exceed the node limit or leave the batch undivided: plan
    reports those as warnings."""
    config = SpecConfig.from_catalog(recipe_ref, cluster_ref, overrides=overrides)
    return config.validated()


def launch_warnings(
    recipe: Recipe, cluster: ClusterProfile, nodes: int, spares: int = 0
) -> list[str]:
    """What `launch` would refuse about this node count, said as warnings with a fix."""
    out = []
    if nodes > cluster.max_nodes:
        out.append(
            f"{nodes} nodes is above cluster {shown(cluster.name)}'s limit of {cluster.max_nodes}"
        )
    elif nodes + spares > cluster.max_nodes:
        out.append(
            f"{nodes} nodes + {spares} spares is above cluster {shown(cluster.name)}'s limit "
            f"of {cluster.max_nodes}"
        )
    if spares and (refusal := spares_refusal(cluster)) is not None:
        out.append(f"{refusal}: launch would refuse it")
    t = recipe.train
    problem = batch_problem(
        t.global_batch_size, t.micro_batch_size, nodes, cluster.tasks_per_node, cluster.max_nodes
    )
    if problem is not None:
        out.append(f"{problem}: launch would refuse it")
    if (problem := memory_problem(recipe, cluster, nodes)) is not None:
        out.append(f"{problem}: launch would refuse it without --force")
    return out


def check_mfu(mfu: float) -> float:
    if not (0.0 < mfu <= 1.0) or math.isnan(mfu):
        raise UsageError(f"--mfu must be in (0, 1], got {mfu}")
    return mfu


def choose_mfu(mfu: float | None, obs: Observed) -> tuple[float, str]:
    """--mfu, else the observed median, else the default; and where it came from."""
    if mfu is not None:
        return check_mfu(mfu), "--mfu"
    if obs.mfu is not None and 0.0 < obs.mfu <= 1.0:
        return obs.mfu, f"observed ({obs.source})"
    return DEFAULT_MFU, "default: no --mfu, no earlier runs observed"


def require_figures(cluster: ClusterProfile) -> None:
    """The profile figures every plan needs; a missing one is named with its fix."""
    for key, needed_for in (
        ("peak_tflops_bf16", "throughput and wall time"),
        ("gpu_memory_gb", "the memory check"),
    ):
        value = getattr(cluster, key)
        if not value:
            raise UsageError(
                f"cluster {shown(cluster.name)}: cluster.{key} is {value}, and plan needs it for "
                f"{needed_for}; set it in the profile or pass -o cluster.{key}=VALUE"
            )
