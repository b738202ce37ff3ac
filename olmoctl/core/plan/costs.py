"""`olmoctl plan`: compute, time, cost, energy, memory and checkpoint interval of a run,
before it is launched. Pure arithmetic on a recipe and a cluster profile (no I/O, no numpy).

Conventions (see docs/plan.md):
- FLOPs per token, forward + backward, follow PaLM (Chowdhery et al. 2022, appendix B) and
  Chinchilla (Hoffmann et al. 2022): 6 * N + 12 * n_layers * d_model * seq_len, where N
  counts the weights used in matrix multiplications (every block and the output projection;
  the input embedding is a lookup and costs nothing) and the second term is attention's
  QK^T and AV products (2 * 2 * seq_len * d_model per layer and token forward, x3 for
  forward + backward), counted over the full seq_len x seq_len score matrix as PaLM does.
- Energy follows the OLMo paper (Groeneveld et al. 2024, section 4 and Table 8): average
  node power x nodes x hours x PUE, then x the grid's carbon intensity.
- Checkpoint interval: Young (1974) / Daly (2006) first order, sqrt(2 x save x job MTBF).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from olmoctl.backends.registry import allocates_nodes
from olmoctl.core.launch.memory import Memory, checkpoint_bytes, estimate
from olmoctl.core.plan.inputs import Observed, choose_mfu, launch_warnings, require_figures
from olmoctl.errors import UsageError
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.recipe import ModelConfig

# An async save stalls training only while each GPU copies its shard to pinned host memory
# (assumed ~5 GB/s over PCIe) plus a fixed cost for planning the save (assumed 1 s).
ASYNC_STAGE_GBPS = 5.0
ASYNC_FIXED_S = 1.0
GB = 1e9
SPARES = (0, 1, 2, 4)  # the spare counts `plan --simulate` compares
HOUR = 3600.0


@dataclass(frozen=True)
class Params:
    total: int
    non_embedding: int
    matmul: int  # the N of 6N: non-embedding + output projection


def param_counts(model: ModelConfig) -> Params:
    non_embedding = model.num_params(embeddings=False)
    return Params(model.num_params(), non_embedding, model.matmul_params())


@dataclass(frozen=True)
class Flops:
    dense_per_token: int  # 6N
    attention_per_token: int  # 12 * n_layers * d_model * seq_len
    per_token: int
    tokens: int
    total: float


def flops(model: ModelConfig, seq_len: int, tokens: int) -> Flops:
    dense = 6 * model.matmul_params()
    attention = model.attention_flops_per_token(seq_len)
    per_token = model.flops_per_token(seq_len)
    return Flops(dense, attention, per_token, tokens, float(per_token) * tokens)


def facility_kwh(node_power_kw: float, nodes: int, hours: float, pue: float) -> float:
    """Energy drawn from the grid: IT power x time x PUE."""
    return node_power_kw * nodes * hours * pue


def co2_tonnes(it_kwh: float, pue: float, carbon_kg_per_kwh: float) -> float:
    """Tonnes CO2eq for IT energy it_kwh (the OLMo paper: 104 MWh x 1.1 x 0.610 = 69.78 t)."""
    return it_kwh * pue * carbon_kg_per_kwh / 1000.0


def young_daly(save_s: float, mtbf_s: float) -> float:
    """The checkpoint interval (compute seconds between saves) that minimises lost time."""
    return math.sqrt(2.0 * save_s * mtbf_s)


@dataclass(frozen=True)
class Costs:
    """Everything an interval's overhead depends on, in seconds."""

    save_s: float  # write one checkpoint
    load_s: float  # read it back on restart
    block_s: float  # training stall of an async save
    job_mtbf_s: float
    detect_s: float
    queue_wait_s: float
    restart_s: float
    time_limit_s: float  # 0: none
    # In-allocation restarts (docs/recovery.md): spare nodes held beside `nodes` training
    # nodes, at most restarts_max restarts per allocation, each after backoff_s. The closed
    # form below ignores them; the simulation models them.
    nodes: int = 1
    spares: int = 0
    restarts_max: int = 0
    backoff_s: float = 0.0


@dataclass(frozen=True)
class Overhead:
    interval_s: float
    async_saves: bool
    saves: float  # fractions of wall time
    rework: float
    restarts: float  # detection, restart and load, after failures and time limits
    queue: float
    goodput: float  # training compute / wall time
    alloc_per_work: float  # allocated (billed) seconds per second of training compute
    wall_per_work: float


def period(interval_s: float, c: Costs, async_saves: bool) -> float:
    """Wall seconds from one save to the next while nothing fails."""
    if async_saves:  # the next save waits for the previous write to finish
        return c.block_s + max(interval_s, c.save_s)
    return interval_s + c.save_s


def overhead(interval_s: float, c: Costs, async_saves: bool) -> Overhead:
    """First-order expected overheads, failures a Poisson process over allocated time."""
    p = period(interval_s, c, async_saves)
    # Work lost per failure: half a period, plus (async) the write that was still in flight.
    rework = p / 2 + (c.save_s if async_saves else 0.0)
    fail_cost = c.detect_s + c.restart_s + c.load_s
    limit_cost = c.restart_s + c.load_s + c.save_s
    r_fail = 1.0 / c.job_mtbf_s
    # Attempts that reach the time limit, per allocated second (attempt length is
    # min(limit, time to failure)): 1 / (M (e^(L/M) - 1)), written to stay finite.
    r_limit = 0.0
    if c.time_limit_s:
        x = c.time_limit_s / c.job_mtbf_s
        r_limit = math.exp(-x) / (c.job_mtbf_s * -math.expm1(-x))
    busy = r_fail * (rework + fail_cost) + r_limit * limit_cost
    if busy >= 1.0:
        inf = math.inf
        return Overhead(interval_s, async_saves, 0, 0, 0, 0, 0.0, inf, inf)
    alloc = (p / interval_s) / (1.0 - busy)
    queue = alloc * (r_fail + r_limit) * c.queue_wait_s
    wall = alloc + queue
    return Overhead(
        interval_s=interval_s,
        async_saves=async_saves,
        saves=(p / interval_s - 1.0) / wall,
        rework=alloc * r_fail * rework / wall,
        restarts=alloc * (r_fail * fail_cost + r_limit * limit_cost) / wall,
        queue=queue / wall,
        goodput=1.0 / wall,
        alloc_per_work=alloc,
        wall_per_work=wall,
    )


@dataclass(frozen=True)
class Footprint:
    wall_s: float
    gpu_hours: float
    node_hours: float
    energy_mwh: float  # from the grid, PUE included
    co2_t: float


@dataclass
class Plan:
    recipe: str
    cluster: str
    nodes: int
    gpus_per_node: int
    gpus: int
    gpu_type: str
    peak_tflops_bf16: float
    mfu: float
    mfu_source: str
    params: Params
    flops: Flops
    steps: int
    tokens_per_step: int
    tokens_per_s: float
    step_s: float
    ideal: Footprint
    expected: Footprint  # at the recipe's interval, sync saves, failures included
    memory: Memory
    checkpoint_gb: float
    node_mtbf_h: float
    node_mtbf_source: str
    costs: Costs
    recipe_interval_steps: int  # the planned interval: the recipe's, or --checkpoint-interval
    interval_source: str
    async_saves: bool  # what the job will do (the recipe's checkpoint.async, else on GPUs)
    spare_nodes: int
    time_limit_by_spares: dict[int, float]  # the site's limit for nodes + spares, 0: none
    intervals: dict[str, Overhead]
    site: dict[str, float | None]  # the profile's energy block (power, PUE, carbon, MTBF...)
    inputs: dict[str, str]  # where each figure came from
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def in_allocation(cluster: ClusterProfile, spare_nodes: int | None) -> tuple[int, int]:
    """(restarts allowed per allocation, spare nodes), as launch and the batch script do
    it: spares and their restarts need the burn-in of a batch scheduler."""
    on = cluster.burnin.enabled and allocates_nodes(cluster.scheduler)
    spares = (cluster.burnin.spare_nodes if on else 0) if spare_nodes is None else spare_nodes
    if spares < 0:
        raise UsageError(f"--spare-nodes must be at least 0, got {spares}")
    return (cluster.burnin.restarts_in_allocation if on else 0), spares


def _footprint(cluster: ClusterProfile, nodes: int, wall_s: float, alloc_s: float) -> Footprint:
    e = cluster.energy
    hours = alloc_s / HOUR
    it_kwh = e.node_power_kw * nodes * hours
    return Footprint(
        wall_s=wall_s,
        gpu_hours=hours * nodes * cluster.tasks_per_node,
        node_hours=hours * nodes,
        energy_mwh=facility_kwh(e.node_power_kw, nodes, hours, e.pue) / 1000.0,
        co2_t=co2_tonnes(it_kwh, e.pue, e.carbon_kg_per_kwh),
    )


def make_plan(
    recipe: Recipe,
    cluster: ClusterProfile,
    nodes: int,
    *,
    mfu: float | None = None,
    observed: Observed | None = None,
    spare_nodes: int | None = None,
    auto_interval: bool = False,
) -> Plan:
    """The whole plan; `observed` figures replace the profile's MTBF and the default MFU.
    spare_nodes None: the profile's burnin.spare_nodes, as launch takes it. auto_interval:
    the checkpoint interval is Young/Daly's for the job's save mode, not the recipe's."""
    if nodes < 1:
        raise UsageError(f"--nodes must be at least 1, got {nodes}")
    restarts, spares = in_allocation(cluster, spare_nodes)
    require_figures(cluster)
    obs = observed or Observed()
    mfu, mfu_source = choose_mfu(mfu, obs)

    e = cluster.energy
    m, t = recipe.model, recipe.train
    params = param_counts(m)
    steps = t.total_steps
    fl = flops(m, t.seq_len, steps * t.tokens_per_step)
    gpus = nodes * cluster.tasks_per_node
    flops_per_s = cluster.peak_tflops_bf16 * 1e12 * mfu * gpus
    tokens_per_s = flops_per_s / fl.per_token
    compute_s = fl.total / flops_per_s
    step_s = t.tokens_per_step / tokens_per_s

    node_mtbf_h, mtbf_source = e.node_mtbf_hours, "profile"
    if obs.node_mtbf_hours:
        node_mtbf_h, mtbf_source = obs.node_mtbf_hours, f"observed ({obs.source})"
    ckpt_bytes = checkpoint_bytes(recipe)
    save_s = ckpt_bytes / (e.fs_write_gbps * GB)
    shard_bytes = ckpt_bytes / gpus
    costs = Costs(
        save_s=save_s,
        load_s=ckpt_bytes / ((e.fs_read_gbps or e.fs_write_gbps) * GB),
        block_s=ASYNC_FIXED_S + shard_bytes / (ASYNC_STAGE_GBPS * GB),
        job_mtbf_s=node_mtbf_h * HOUR / nodes,
        detect_s=e.detect_s,
        queue_wait_s=e.queue_wait_s,
        restart_s=e.restart_s,
        time_limit_s=float(cluster.max_time_s_for(nodes + spares)),  # the limit at this size
        nodes=nodes,
        spares=spares,
        restarts_max=restarts,
        backoff_s=float(cluster.burnin.restart_backoff_s),
    )
    async_saves = recipe.checkpoint.async_save
    if async_saves is None:  # the trainer's default: async on GPUs (train/checkpoint)
        async_saves = bool(cluster.gpu_type)
    interval_steps, interval_source = recipe.checkpoint.interval_steps, "recipe"
    if auto_interval:
        stall = costs.block_s if async_saves else costs.save_s
        interval_steps = max(1, round(young_daly(stall, costs.job_mtbf_s) / step_s))
        interval_source = (
            f"auto: Young/Daly sqrt(2 x {'async stall' if async_saves else 'save'} "
            f"{stall:.1f} s x job MTBF {costs.job_mtbf_s / HOUR:.1f} h), "
            f"node MTBF from: {mtbf_source}"
        )
    recipe_interval = interval_steps * step_s
    intervals = {
        "recipe_sync": overhead(recipe_interval, costs, False),
        "recipe_async": overhead(recipe_interval, costs, True),
        "young_daly_sync": overhead(young_daly(costs.save_s, costs.job_mtbf_s), costs, False),
        "young_daly_async": overhead(young_daly(costs.block_s, costs.job_mtbf_s), costs, True),
    }
    exp = intervals["recipe_sync"]
    mem = estimate(recipe, cluster, nodes)
    inputs = {"mfu": mfu_source, "node_mtbf_hours": mtbf_source}
    for key, info in type(e).model_fields.items():
        if key in e.model_fields_set:
            inputs.setdefault(key, "profile")
        elif info.default is not None:  # None: derived from another figure
            inputs.setdefault(key, "default (not in the profile)")
    warnings = launch_warnings(recipe, cluster, nodes, spares)
    if exp.goodput == 0:
        warnings.append(
            f"failures every {costs.job_mtbf_s / 60:.0f} min on {nodes} nodes outpace detection, "
            "restart and load: goodput near zero"
        )
    return Plan(
        recipe=recipe.name,
        cluster=cluster.name,
        nodes=nodes,
        gpus_per_node=cluster.tasks_per_node,
        gpus=gpus,
        gpu_type=cluster.gpu_type,
        peak_tflops_bf16=cluster.peak_tflops_bf16,
        mfu=mfu,
        mfu_source=mfu_source,
        params=params,
        flops=fl,
        steps=steps,
        tokens_per_step=t.tokens_per_step,
        tokens_per_s=tokens_per_s,
        step_s=step_s,
        ideal=_footprint(cluster, nodes, compute_s, compute_s),
        expected=_footprint(  # spares are held (billed, powered) the whole time
            cluster, nodes + spares, compute_s * exp.wall_per_work, compute_s * exp.alloc_per_work
        ),
        memory=mem,
        checkpoint_gb=ckpt_bytes / GB,
        node_mtbf_h=node_mtbf_h,
        node_mtbf_source=mtbf_source,
        costs=costs,
        recipe_interval_steps=interval_steps,
        interval_source=interval_source,
        async_saves=async_saves,
        spare_nodes=spares,
        time_limit_by_spares={
            k: float(cluster.max_time_s_for(nodes + k)) for k in sorted({*SPARES, spares})
        },
        intervals=intervals,
        site=e.model_dump(),
        inputs=inputs,
        warnings=warnings,
    )
