"""`olmoctl plan --simulate`: a Monte-Carlo run of the whole job at scale.

Model (docs/plan.md): node failures are a Poisson process over the time the job holds its
nodes (rate nodes / node MTBF, plus 1 / BAD_NODE_MTBF_S per "lemon" node in the job). A
failure is noticed after detect_s, the next attempt waits an exponential queue time (mean
queue_wait_s), then restart_s and a checkpoint load; work since the last durable checkpoint
is lost. A sync save stalls training for save_s; an async one for block_s, and becomes
durable save_s later (a failure before then falls back one checkpoint). Each attempt ends at
the profile's time limit with a save (the signal), then queues again. A failed node is a
lemon with probability BAD_NODE_FRACTION: `watch` excludes failed nodes, so a lemon never
comes back; without exclusion it stays and fails again. With spare nodes (costs.spares) a
lost node is replaced in the allocation, without a queue wait, while spares and
costs.restarts_max restarts last; the allocation's time limit runs on across those restarts.
Intervals share their random draws (common random numbers), so the curve against the
interval is smooth at few seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from olmoctl.core.plan.costs import Costs, Plan, overhead, young_daly
from olmoctl.errors import OlmoctlError, UsageError

# Assumed, not measured (no public figure): 1 in 10 failed nodes fails again within a day.
BAD_NODE_FRACTION = 0.1
BAD_NODE_MTBF_S = 24 * 3600.0
# Intervals tried, as multiples of the Young/Daly interval.
GRID = np.geomspace(0.25, 4.0, 17)
TABLE = (0.25, 0.5, 1.0, 2.0, 4.0)
_NO_LIMIT = 1e18


@dataclass(frozen=True)
class Runs:
    """Simulated runs, arrays (seeds, intervals)."""

    done: np.ndarray  # training compute seconds (the whole work when the run finished)
    wall: np.ndarray  # from the first start to the end, queue waits included
    held: np.ndarray  # allocated node-seconds / training nodes (spares held count too)
    in_alloc: np.ndarray  # restarts inside the allocation (a spare took the lost node's place)
    requeues: np.ndarray  # failures that went through the queue
    limits: np.ndarray  # allocations ended by the time limit (a save, then the queue)

    @property
    def goodput(self) -> np.ndarray:
        """Training compute / wall time."""
        return _ratio(self.done, self.wall)

    @property
    def node_goodput(self) -> np.ndarray:
        """Productive node-hours / allocated node-hours (spares count, queue time does not)."""
        return _ratio(self.done, self.held)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(a.shape), where=b > 0)


def goodput(costs: Costs, work_s: float, intervals: Any, **kw: Any) -> np.ndarray:
    """Goodput (training compute / wall time from the first start) of `seeds` runs for each
    checkpoint interval (compute seconds between saves): an array (seeds, len(intervals))."""
    return runs(costs, work_s, intervals, **kw).goodput


def runs(
    costs: Costs,
    work_s: float,
    intervals: Any,
    *,
    async_saves: bool,
    seeds: int,
    seed: int = 0,
    exclude_failed: bool = True,
    bad_fraction: float = BAD_NODE_FRACTION,
    bad_mtbf_s: float = BAD_NODE_MTBF_S,
) -> Runs:
    """`seeds` whole runs for each checkpoint interval (compute seconds between saves), one
    training step (segment) of every run per loop turn."""
    c = costs
    tau = np.asarray(intervals, dtype=float).reshape(1, -1)
    shape = (seeds, tau.shape[1])
    if async_saves:
        per, lag = c.block_s + np.maximum(tau, c.save_s), c.save_s
    else:
        per, lag = tau + c.save_s, 0.0
    limit = c.time_limit_s or _NO_LIMIT
    base = 1.0 / c.job_mtbf_s
    # Spares only help where the batch script restarts in the allocation.
    restarts = c.restarts_max if c.spares else 0
    rng = np.random.default_rng(seed)
    done, wall, held, bad = (np.zeros(shape) for _ in range(4))
    n_alloc, n_queue, n_limit = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    # The current allocation: spares left, restarts done, seconds held, the next start's pause.
    left = np.full(shape, float(c.spares))
    rounds, t_alloc, pause = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    live = np.ones(shape, dtype=bool)
    attempts = work_s / min(c.job_mtbf_s, limit)
    for _ in range(int(min(20_000, 100 + 20 * attempts))):
        if not live.any():
            break
        # One draw per seed per segment, shared by every interval.
        u_up, u_src, u_bad, u_queue = rng.random((4, seeds, 1))
        rate = base + bad / bad_mtbf_s
        up = -np.log1p(-u_up) / rate
        lim = limit - t_alloc  # the allocation's time limit runs on across restarts in it
        start = c.restart_s + np.where(done > 0, c.load_s, 0.0) + pause
        rem = work_s - done
        between = np.maximum(np.ceil(rem / tau) - 1, 0)
        need = start + rem + between * (per - tau) + c.save_s
        fin = live & (need <= np.minimum(up, lim))
        cut = live & ~fin & (lim <= up)
        failed = live & ~fin & ~cut
        # A lost node with a spare left, restarts to go and time to use: no queue.
        stay = failed & (left > 0) & (rounds < restarts) & (up + c.detect_s < lim)
        requeue = failed & ~stay
        w = np.maximum(lim - start - c.save_s, 0.0)  # train until the signal, then save
        n = np.floor(w / per)
        by_limit = n * tau + np.minimum(w - n * per, tau)
        by_fail = np.floor(np.maximum(up - start - lag, 0.0) / per) * tau
        queue = -np.log1p(-u_queue) * c.queue_wait_s
        done = np.where(cut, done + by_limit, np.where(failed, done + by_fail, done))
        done = np.minimum(np.where(fin, work_s, done), work_s)
        dt = np.where(fin, need, 0.0) + np.where(cut, lim, 0.0)
        dt += np.where(failed, np.minimum(up + c.detect_s, lim), 0.0)  # Slurm ends it at lim
        held += dt * (1.0 + left / c.nodes)  # a lost spare's place is no longer billed
        wall += dt + np.where(cut | requeue, queue, 0.0)
        fresh = cut | requeue  # a new allocation: all spares again
        left = np.where(fresh, float(c.spares), left - stay)
        rounds = np.where(fresh, 0.0, rounds + stay)
        t_alloc = np.where(fresh, 0.0, t_alloc + dt)
        pause = np.where(stay, c.backoff_s, np.where(fresh, 0.0, pause))
        n_alloc += stay
        n_queue += requeue
        n_limit += cut
        from_bad = u_src * rate < bad / bad_mtbf_s
        if exclude_failed:
            bad = np.where(failed & from_bad, bad - 1, bad)
        else:
            bad = np.where(failed & ~from_bad & (u_bad < bad_fraction), bad + 1, bad)
        live &= ~fin & (done < work_s)
    return Runs(done, wall, held, n_alloc, n_queue, n_limit)


def best_interval(intervals: Any, mean_goodput: Any) -> float:
    """The interval maximising goodput: fit lost = a / t + b * t + c (saves fall as 1/t,
    rework grows as t) over the grid, t* = sqrt(a / b)."""
    x = np.asarray(intervals, dtype=float)
    y = 1.0 - np.asarray(mean_goodput, dtype=float)
    (a, b, _), *_ = np.linalg.lstsq(np.stack([1 / x, x, np.ones_like(x)], axis=1), y, rcond=None)
    if a > 0 and b > 0:
        return float(np.clip(math.sqrt(a / b), x.min(), x.max()))
    return float(x[int(np.argmax(mean_goodput))])


def _stats(g: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(g.mean()),
        "std": float(g.std(ddof=1)) if g.size > 1 else 0.0,
        "p5": float(np.percentile(g, 5)),
        "p95": float(np.percentile(g, 95)),
    }


def simulate(plan: Plan, *, seeds: int = 32, seed: int = 0) -> dict[str, Any]:
    """Goodput of the planned run: at Young/Daly and the recipe's interval, sync and async,
    against the interval, and the simulated optimum. JSON-ready."""
    if seeds < 2:
        raise UsageError(f"--seeds must be at least 2 (for a spread), got {seeds}")
    c, work = plan.costs, plan.ideal.wall_s
    yd = {"sync": young_daly(c.save_s, c.job_mtbf_s), "async": young_daly(c.block_s, c.job_mtbf_s)}
    recipe = plan.intervals["recipe_sync"].interval_s
    table = sorted({*(f * yd["sync"] for f in TABLE), yd["async"], recipe})
    out: dict[str, Any] = {"seeds": seeds, "young_daly_s": yd, "recipe_s": recipe, "modes": {}}
    rows: dict[float, dict[str, Any]] = {t: {"interval_s": t} for t in table}
    for mode, is_async in (("sync", False), ("async", True)):
        grid = GRID * yd[mode]
        xs = np.concatenate([grid, table])
        g = goodput(c, work, xs, async_saves=is_async, seeds=seeds, seed=seed)
        fine, tab = g[:, : len(grid)], g[:, len(grid) :]
        for j, t in enumerate(table):
            rows[t][mode] = _stats(tab[:, j])
        at_yd = tab[:, table.index(yd[mode])]
        optimum = best_interval(grid, fine.mean(axis=0))
        out["modes"][mode] = {
            "young_daly": _stats(at_yd),
            "recipe": _stats(tab[:, table.index(recipe)]),
            "optimum_s": optimum,
            "optimum_vs_young_daly": optimum / yd[mode],
            "analytic_young_daly": overhead(yd[mode], c, is_async).goodput,
            "curve": {
                "interval_s": grid.tolist(),
                "mean": fine.mean(axis=0).tolist(),
                "p5": np.percentile(fine, 5, axis=0).tolist(),
                "p95": np.percentile(fine, 95, axis=0).tolist(),
            },
        }
    no_excl = goodput(
        c, work, [yd["async"]], async_saves=True, seeds=seeds, seed=seed, exclude_failed=False
    )
    out["modes"]["async"]["young_daly_no_exclusion"] = _stats(no_excl[:, 0])
    out["table"] = [rows[t] for t in table]
    out["spares"] = spares_table(plan, seeds=seeds, seed=seed)
    return out


def spares_table(plan: Plan, *, seeds: int, seed: int = 0) -> dict[str, Any]:
    """Goodput at the planned interval and save mode with 0, 1, 2, 4 (and the planned
    number of) spare nodes: in-allocation restarts while spares last, the queue after."""
    tau = plan.recipe_interval_steps * plan.step_s
    rows = []
    for k, limit in sorted(plan.time_limit_by_spares.items()):
        c = replace(plan.costs, spares=k, time_limit_s=limit)
        r = runs(c, plan.ideal.wall_s, [tau], async_saves=plan.async_saves, seeds=seeds, seed=seed)
        rows.append(
            {
                "spares": k,
                "goodput": _stats(r.goodput[:, 0]),
                "node_goodput": _stats(r.node_goodput[:, 0]),
                "restarts_in_allocation": float(r.in_alloc.mean()),
                "requeues_after_failures": float(r.requeues.mean()),
            }
        )
    return {
        "interval_s": tau,
        "async_saves": plan.async_saves,
        "restarts_per_allocation": plan.costs.restarts_max,
        "rows": rows,
    }


def require_matplotlib() -> None:
    from olmoctl.core.outputs.figures import have_matplotlib

    if not have_matplotlib():
        raise OlmoctlError("--plot needs matplotlib: pip install 'olmoctl[plot]'")


def plot(sim: dict[str, Any], path: str, title: str) -> None:
    """Goodput against the checkpoint interval (PNG)."""
    require_matplotlib()
    from olmoctl.core.outputs.figures import pyplot

    with pyplot() as plt:
        _draw(plt, sim, path, title)


def _draw(plt: Any, sim: dict[str, Any], path: str, title: str) -> None:
    from olmoctl.core.outputs.figures import save_png

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for mode, color in (("sync", "tab:blue"), ("async", "tab:orange")):
        m = sim["modes"][mode]
        x = np.asarray(m["curve"]["interval_s"]) / 60
        ax.plot(x, 100 * np.asarray(m["curve"]["mean"]), color=color, label=f"{mode} saves")
        lo, hi = (100 * np.asarray(m["curve"][k]) for k in ("p5", "p95"))
        ax.fill_between(x, lo, hi, color=color, alpha=0.2)
        ax.axvline(sim["young_daly_s"][mode] / 60, color=color, ls="--", lw=1)
    ax.axvline(sim["recipe_s"] / 60, color="gray", ls=":", label="recipe interval")
    ax.set_xscale("log")
    ax.set_xlabel("checkpoint interval (minutes of training; dashed: Young/Daly)")
    ax.set_ylabel("goodput (%), mean and 5-95th percentile")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    try:
        save_png(fig, path, label="--plot")
    except OSError as e:
        raise UsageError(f"--plot {path}: cannot write: {e.strerror}") from None
    finally:
        plt.close(fig)
