"""What `plan` (and `plan --simulate`) predicts for a run that exists: shown beside its goodput
ledger (`status RUN`, the card). The run's recipe, profile and node count as recorded, its
own measured MFU when it has one, and the recipe's checkpoint interval and save mode."""

from __future__ import annotations

from typing import Any

from olmoctl.core.plan.costs import make_plan
from olmoctl.core.plan.inputs import Observed
from olmoctl.errors import OlmoctlError
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.store import Run

# Few seeds: a status line, not a study (plan --simulate --seeds N for that).
SEEDS = 16


def predict(
    recipe: Recipe,
    cluster: ClusterProfile,
    nodes: int,
    *,
    mfu: float | None = None,
    observed: Observed | None = None,
    spare_nodes: int = 0,
    seeds: int = SEEDS,
) -> dict[str, Any]:
    """Shares of the wall time per ledger category (first order, plan's closed form) and the
    simulated goodput (mean, p5, p95) at the recipe's interval; {"unavailable": why} when
    the profile lacks the figures a plan needs."""
    try:
        plan = make_plan(
            recipe, cluster, nodes, mfu=mfu, observed=observed, spare_nodes=spare_nodes
        )
    except OlmoctlError as e:
        return {"unavailable": str(e)}
    is_async = plan.async_saves  # what the job does: the recipe's, else async on GPUs
    o = plan.intervals["recipe_async" if is_async else "recipe_sync"]
    from olmoctl.core.plan import simulate

    g = simulate.goodput(
        plan.costs, plan.ideal.wall_s, [o.interval_s], async_saves=is_async, seeds=seeds
    )[:, 0]
    return {
        "mfu": plan.mfu,
        "mfu_source": plan.mfu_source,
        "interval_s": o.interval_s,
        "async_saves": is_async,
        "wall_s": plan.ideal.wall_s * o.wall_per_work,
        # plan's model has no separate starting, burn-in or hang: all in `restart`; its
        # queue is the requeues' (the first queue wait is not in plan's wall time)
        "shares": {
            "productive": o.goodput,
            "checkpoint": o.saves,
            "redone": o.rework,
            "restart": o.restarts,
            "queued": o.queue,
        },
        "simulated_goodput": {"seeds": seeds, **simulate._stats(g)},  # plan's statistics
    }


def for_run(run: Run) -> dict[str, Any]:
    """predict() for a recorded run: its spec, its own MFU (the last one logged) when it
    has one, else what plan would take (earlier runs observed, else the default)."""
    from olmoctl.core.plan.inputs import observed
    from olmoctl.core.track.runs import spec_of

    try:
        spec = spec_of(run)
    except OlmoctlError as e:
        return {"unavailable": str(e)}
    mfu = run.summary.get("mfu")
    if isinstance(mfu, int | float) and not isinstance(mfu, bool) and 0 < mfu <= 1:
        obs = None
    else:
        mfu, obs = None, observed(spec.recipe.name, spec.cluster.name)
    return predict(
        spec.recipe, spec.cluster, spec.nodes, mfu=mfu, observed=obs, spare_nodes=spec.spare_nodes
    )
