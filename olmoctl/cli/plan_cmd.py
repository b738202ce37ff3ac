"""`olmoctl plan`: compute, time, GPU-hours, energy, CO2, memory and checkpoint interval of a
run before launching it; `--simulate` adds a Monte-Carlo goodput estimate."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from olmoctl.cli import options
from olmoctl.cli.text import echo


def plan(
    recipe: str = options.recipe(...),
    cluster: str = options.CLUSTER,
    nodes: int = options.NODES,
    override: list[str] = options.OVERRIDE,
    mfu: float | None = typer.Option(
        None,
        "--mfu",
        help="Model FLOPs utilisation in (0, 1] (default: observed, else 0.40).",
        click_type=options.FLOAT,
    ),
    as_json: bool = options.JSON,
    simulate: bool = typer.Option(
        False, "--simulate", help="Monte-Carlo goodput with failures, restarts and saves."
    ),
    seeds: int = typer.Option(
        32,
        "--seeds",
        help="Simulated runs per setting (--simulate).",
        click_type=options.INT,
        callback=options.bounded("--seeds", 2, 10_000),
    ),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="Write goodput against checkpoint interval as a PNG (implies --simulate).",
    ),
    spare_nodes: int | None = options.SPARE_NODES,
    checkpoint_interval: str | None = typer.Option(
        None,
        "--checkpoint-interval",
        metavar="STEPS|auto",
        help="Steps between saves (as -o checkpoint.interval_steps=STEPS), or auto: "
        "Young/Daly from the measured node failure rate, else the profile's.",
    ),
) -> None:
    """Time, GPU-hours, energy, CO2, memory and checkpoint interval of a run, before launch."""
    from olmoctl.core.plan import inputs as plan_inputs
    from olmoctl.core.plan.costs import make_plan
    from olmoctl.core.plan.inputs import check_mfu

    if mfu is not None:
        check_mfu(mfu)
    auto, extra = plan_inputs.interval_option(checkpoint_interval)
    r, c = plan_inputs.load(recipe, cluster, [*override, *extra])
    obs = plan_inputs.observed(r.name, c.name)
    if obs.problem:
        echo(f"note: {obs.problem}; planned without observed figures", err=True)
    result = make_plan(
        r, c, nodes, mfu=mfu, observed=obs, spare_nodes=spare_nodes, auto_interval=auto
    )
    sim = None
    if simulate or plot is not None:
        from olmoctl.core.plan import simulate as sim_mod

        if plot is not None:
            from olmoctl.fileio import check_target

            check_target(plot, "--plot")  # a device, FIFO or link: refused before the work
            sim_mod.require_matplotlib()
        sim = sim_mod.simulate(result, seeds=seeds)
        if plot is not None:
            title = f"{result.recipe} on {result.cluster}, {result.nodes} nodes ({seeds} seeds)"
            sim_mod.plot(sim, str(plot), title)
    if as_json:
        data = result.to_dict()
        if sim is not None:
            data["simulation"] = sim
        typer.echo(json.dumps(_finite(data), indent=2))
    else:
        _print(result, sim)
    if plot is not None:
        echo(f"wrote {plot}", err=True)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _n(x: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def _dur(s: float) -> str:
    if not math.isfinite(s):
        return "never"
    if s >= 2 * 86400:
        return f"{s / 86400:.1f} days"
    if s >= 2 * 3600:
        return f"{s / 3600:.1f} h"
    if s >= 120:
        return f"{s / 60:.0f} min"
    return f"{s:.1f} s"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _table(title: str, **kw: Any) -> Any:
    from rich import box
    from rich.table import Table

    from olmoctl.cli.text import data

    return Table(
        title=data(title), title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True, **kw
    )


def _print(p: Any, sim: dict[str, Any] | None) -> None:
    from rich.console import Console
    from rich.text import Text

    from olmoctl.cli.text import data

    con = Console()
    gpu = p.gpu_type or "GPU"
    con.print(
        Text.assemble(
            ("plan", "bold"),
            data(
                f": {p.recipe} on {p.cluster}, {p.nodes} nodes x {p.gpus_per_node} {gpu} = "
                f"{p.gpus:,} GPUs"
            ),
        )
    )
    f, pr = p.flops, p.params
    t = _table("Compute", show_header=False)
    t.add_row(
        "parameters", f"{_n(pr.total)} total ({pr.total:,}), {_n(pr.non_embedding)} non-embedding"
    )
    t.add_row(
        "FLOPs per token",
        f"{_n(f.per_token)} = 6N {_n(f.dense_per_token)} (N = {_n(pr.matmul)} in matmuls) "
        f"+ attention {_n(f.attention_per_token)} (12 L d T)",
    )
    t.add_row("tokens", f"{_n(f.tokens)} ({p.steps:,} steps x {_n(p.tokens_per_step)})")
    t.add_row("total FLOPs", f"{f.total:.3e}")
    t.add_row("MFU", data(f"{p.mfu:.2f} ({p.mfu_source})"))
    t.add_row(
        "throughput",
        f"{_n(p.tokens_per_s)} tokens/s ({p.peak_tflops_bf16:g} TFLOP/s peak x {p.mfu:.2f} x "
        f"{p.gpus:,} GPUs), {p.step_s:.2f} s/step",
    )
    con.print(t)

    e = p.inputs
    t = _table("Time, cost, energy")
    t.add_column("")
    t.add_column("ideal (no failures)", justify="right")
    spares = f", {p.spare_nodes} spare nodes held" if p.spare_nodes else ""
    t.add_column(f"expected ({p.recipe_interval_steps} step saves, sync{spares})", justify="right")
    i, x = p.ideal, p.expected
    t.add_row("wall time", _dur(i.wall_s), _dur(x.wall_s))
    t.add_row("GPU-hours", f"{i.gpu_hours:,.0f}", f"{x.gpu_hours:,.0f}")
    t.add_row("node-hours", f"{i.node_hours:,.0f}", f"{x.node_hours:,.0f}")
    t.add_row("energy (x PUE)", f"{i.energy_mwh:,.1f} MWh", f"{x.energy_mwh:,.1f} MWh")
    t.add_row("CO2eq", f"{i.co2_t:,.2f} t", f"{x.co2_t:,.2f} t")
    con.print(t)
    c = p.costs
    s = p.site
    con.print(
        f"  node power {s['node_power_kw']:g} kW x PUE {s['pue']:g}, carbon "
        f"{s['carbon_kg_per_kwh']:g} kg CO2/kWh; expected = with failures, restarts and queue "
        "waits (GPU-hours and energy leave queue time out)"
    )

    m = p.memory
    t = _table(f"Memory per GPU, GB ({m.strategy} sharding over {m.shard_size:,} GPUs)")
    for col in ("params", "grads", "AdamW", "FSDP", "activations", "runtime", "total", "GPU"):
        t.add_column(col, justify="right")
    parts = (m.params_gb, m.grads_gb, m.optimizer_gb, m.gathered_gb, m.activations_gb)
    t.add_row(
        *(f"{v:.2f}" for v in (*parts, m.runtime_gb, m.total_gb)),
        f"{m.gpu_memory_gb:g} " + ("[green]fits[/green]" if m.fits else "[red]DOES NOT FIT[/red]"),
    )
    con.print(t)
    ac = "on" if m.activation_checkpointing else "off"
    other = "off" if m.activation_checkpointing else "on"
    con.print(
        "  params, grads, AdamW moments in fp32; FSDP: gathered units and one unit's gradient; "
        f"activations at micro batch {m.micro_batch_size} with activation checkpointing {ac} "
        f"({other}: {m.activations_other_gb:.2f} GB). launch checks this same estimate"
    )

    t = _table("Checkpoint interval")
    for col in ("", "every", "steps", "saves", "rework", "restarts", "queue", "goodput"):
        t.add_column(col, justify="right" if col else "left", no_wrap=not col)
    planned = "recipe" if p.interval_source == "recipe" else "planned"
    labels = {
        "recipe_sync": f"{planned}, sync",
        "recipe_async": f"{planned}, async",
        "young_daly_sync": "Young/Daly, sync",
        "young_daly_async": "Young/Daly, async",
    }
    for key, label in labels.items():
        o = p.intervals[key]
        t.add_row(
            label,
            _dur(o.interval_s),
            f"{o.interval_s / p.step_s:,.0f}",
            *(_pct(v) for v in (o.saves, o.rework, o.restarts, o.queue, o.goodput)),
        )
    con.print(t)
    con.print(
        data(
            f"  {planned}: a save every {p.recipe_interval_steps:,} steps; "
            f"checkpoint {p.checkpoint_gb:,.1f} GB: save {c.save_s:.1f} s (async stall "
            f"{c.block_s:.1f} s), load {c.load_s:.1f} s; node MTBF {p.node_mtbf_h:,.0f} h "
            f"({p.node_mtbf_source}) / {p.nodes} nodes = job MTBF {c.job_mtbf_s / 3600:.1f} h; "
            f"time limit {_dur(c.time_limit_s)}"
        )
    )
    if p.interval_source != "recipe":
        con.print(
            data(
                f"  {p.interval_source}; launch with "
                f"-o checkpoint.interval_steps={p.recipe_interval_steps}"
            )
        )
    if p.spare_nodes:
        con.print("  this closed form leaves the spares out; --simulate models them")
    if sim is not None:
        _print_sim(con, p, sim)
    defaults = [k for k, v in e.items() if v.startswith("default (not")]
    if defaults:
        used = ("defaults used (not in the profile)", "yellow")
        con.print(Text.assemble("  ", used, data(f": {', '.join(defaults)}")))
    for w in p.warnings:  # they quote profile values
        con.print(Text.assemble(("warning", "yellow"), data(f": {w}")))


def _print_sim(con: Any, p: Any, sim: dict[str, Any]) -> None:
    t = _table(f"Simulated goodput ({sim['seeds']} seeds, mean ± sd)")
    for col in ("every", "steps", "sync saves", "async saves", ""):
        t.add_column(col, justify="right" if col else "left", no_wrap=not col)
    yd = sim["young_daly_s"]
    for row in sim["table"]:
        s = row["interval_s"]
        notes = [
            n
            for n, v in (
                ("Young/Daly sync", yd["sync"]),
                ("Young/Daly async", yd["async"]),
                ("recipe" if p.interval_source == "recipe" else "planned", sim["recipe_s"]),
            )
            if v == s
        ]
        t.add_row(
            _dur(s),
            f"{s / p.step_s:,.0f}",
            *(f"{_pct(row[m]['mean'])} ± {100 * row[m]['std']:.2f}" for m in ("sync", "async")),
            ", ".join(notes),
        )
    con.print(t)
    a, s = sim["modes"]["async"], sim["modes"]["sync"]
    con.print(
        f"  at Young/Daly: async {_pct(a['young_daly']['mean'])} (5-95%: "
        f"{_pct(a['young_daly']['p5'])}-{_pct(a['young_daly']['p95'])}), sync "
        f"{_pct(s['young_daly']['mean'])}; async without excluding failed nodes "
        f"{_pct(a['young_daly_no_exclusion']['mean'])}"
    )
    con.print(
        f"  simulated optimum: sync {_dur(s['optimum_s'])} ({s['optimum_vs_young_daly']:.2f} x "
        f"Young/Daly), async {_dur(a['optimum_s'])} ({a['optimum_vs_young_daly']:.2f} x)"
    )
    _print_spares(con, p, sim["spares"])


def _print_spares(con: Any, p: Any, sp: dict[str, Any]) -> None:
    mode = "async" if sp["async_saves"] else "sync"
    t = _table(f"Simulated goodput with spare nodes (every {_dur(sp['interval_s'])}, {mode} saves)")
    for col in ("spares", "goodput (time)", "node-hours", "restarts in alloc.", "requeues", ""):
        t.add_column(col, justify="right" if col else "left", no_wrap=not col)
    for row in sp["rows"]:
        g, n = row["goodput"], row["node_goodput"]
        t.add_row(
            str(row["spares"]),
            f"{_pct(g['mean'])} ± {100 * g['std']:.2f}",
            f"{_pct(n['mean'])} ± {100 * n['std']:.2f}",
            f"{row['restarts_in_allocation']:.1f}",
            f"{row['requeues_after_failures']:.1f}",
            "planned" if row["spares"] == p.spare_nodes else "",
        )
    con.print(t)
    c = p.costs
    cap = sp["restarts_per_allocation"]
    how = (
        f"a lost node costs detection {c.detect_s:g} s (the profile's detect_s, the same Slurm "
        f"node-down detection either way) + {c.backoff_s:g} s pause + restart {c.restart_s:g} s "
        f"+ load + rework while spares last (at most {cap} per allocation), and the queue "
        f"({c.queue_wait_s:g} s mean) after"
        if cap
        else "in-allocation restarts are off here (burnin disabled, no batch scheduler or "
        "burnin.restarts_in_allocation 0): spares are idle"
    )
    con.print(
        f"  goodput (time) = training compute / wall time, queue included; node-hours = "
        f"productive node-hours / allocated node-hours (spares held count, queue time does "
        f"not); counts are per run. {how}"
    )


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
