"""`olmoctl card RUN`: a run card (Markdown + JSON + loss curve PNG) for a paper or an issue.

It holds the run's record (config, scripts, code, environment, seed, data fingerprint),
the attempt timeline, goodput when the events allow it, and the loss curve (matplotlib,
the optional `plot` extra; without it the card says so and has no picture).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from olmoctl.core.outputs import ledger_card
from olmoctl.core.outputs.figures import have_matplotlib
from olmoctl.core.records import record
from olmoctl.core.track import events as ev
from olmoctl.core.track.goodput import goodput
from olmoctl.core.track.ledger import ledger
from olmoctl.core.track.runs import find_run, spec_of
from olmoctl.errors import OlmoctlError, user_path
from olmoctl.fileio import atomic_write, check_folder, check_target
from olmoctl.schemas.events import Eval, Event, EventKind, Step
from olmoctl.schemas.record import (
    Code,
    DataFingerprint,
    Devices,
    GlobalIndices,
    Record,
    StartEnv,
    Versions,
)
from olmoctl.store import Store


def segments(events: list[Event]) -> list[list[Event]]:
    """The events of each job start: a `started` event and what followed it."""
    out: list[list[Event]] = []
    for e in events:
        if e.event == EventKind.STARTED:
            out.append([e])
        elif out:
            out[-1].append(e)
    return out


def final_losses(events: list[Event]) -> list[tuple[int, float]]:
    """(step, loss) of the steps in the final model: a step trained again after a resume
    counts once, as last trained."""
    by_step: dict[int, float] = {}
    last = None
    for seg in segments(events) or [events]:
        for e in seg:
            if isinstance(e, Step) and e.step is not None:
                if e.loss is not None:
                    by_step[e.step] = e.loss
                last = e.step
    return sorted((s, v) for s, v in by_step.items() if last is None or s <= last)


def final_evals(events: list[Event]) -> dict[str, list[tuple[int, float]]]:
    """Each eval set's (step, loss) in the final model's history, like final_losses: an
    eval repeated after a resume from an earlier checkpoint counts once, as last run."""
    by_set: dict[str, dict[int, float]] = {}
    last = None
    for seg in segments(events) or [events]:
        for e in seg:
            if isinstance(e, Step) and e.step is not None:
                last = e.step
            elif isinstance(e, Eval) and e.step is not None and e.name and e.loss is not None:
                by_set.setdefault(e.name, {})[e.step] = e.loss
    return {
        name: sorted((s, v) for s, v in steps.items() if last is None or s <= last)
        for name, steps in by_set.items()
    }


# What plan predicts for a run (core/plan/predict.for_run), passed in by the command:
# outputs cannot import plan.
Predict = Callable[[Any], dict[str, Any]]


def build(store: Store, run: str, predict: Predict | None = None) -> dict[str, Any]:
    row = find_run(store, run)
    spec = spec_of(row)
    rec = record.refresh(store, row)
    events = ev.read_events(spec.run_dir, None) if record.local(spec) else []
    summary = ev.summarize(events)
    losses = final_losses(events)
    now = time.time()
    led = ledger(events, store.attempts(run), now, spec.cluster.hang_timeout_s) or None
    if led is not None and predict is not None:
        led["predicted"] = predict(find_run(store, run))
    return {
        "run": run,
        "state": row.state,
        "recipe": spec.recipe.name,
        "cluster": spec.cluster.name,
        "nodes": spec.nodes,
        "world_size": spec.world_size,
        "total_steps": row.total_steps,
        "step": summary.step,
        "final_loss": losses[-1][1] if losses else None,
        "tokens_per_s": summary.tokens_per_s,
        "goodput": goodput(events, store.attempts(run), now) or None,
        "ledger": led,
        "losses": losses,
        "eval_losses": final_evals(events),
        "record": rec,
        "made_at": now,
    }


def plot_losses(
    losses: list[tuple[int, float]],
    path: Path,
    title: str,
    evals: dict[str, list[tuple[int, float]]] | None = None,
) -> None:
    from olmoctl.core.outputs.figures import have_matplotlib, pyplot, save_png

    if not have_matplotlib():
        raise OlmoctlError("the loss plot needs matplotlib: pip install 'olmoctl[plot]'")
    with pyplot() as plt:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        xs, ys = [s for s, _ in losses], [v for _, v in losses]
        ax.plot(
            xs, ys, color="tab:blue", lw=1.5, marker="." if len(xs) <= 200 else None, label="train"
        )
        for name, points in (evals or {}).items():
            ax.plot([s for s, _ in points], [v for _, v in points], lw=1.5, marker="o", ms=4,
                    label=f"eval: {name}")  # fmt: skip
        if evals:
            ax.legend()
        ax.set_xlabel("step")
        ax.set_ylabel("loss" if evals else "training loss")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        try:
            save_png(fig, path)
        finally:
            plt.close(fig)


def _ts(t: float | None) -> str:
    if not t:
        return "-"
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _v(x: Any) -> str:
    return "-" if x is None or x == "" else str(x)


def markdown(
    card: dict[str, Any],
    png_name: str | None,
    plot_note: str | None,
    ledger_png: str | None = None,
) -> str:
    rec = Record.of(card["record"])
    cfg = rec.config
    r, c = cfg["recipe"], cfg["cluster"]
    code = rec.code() or Code()
    git = code.git
    env = rec.environment or StartEnv()
    versions = env.versions or Versions()
    devices = env.devices or Devices()
    data = rec.data
    fp = data.fingerprint() or DataFingerprint()
    gi = rec.global_indices or GlobalIndices()
    src = rec.from_
    lines = [
        f"# Run card: {card['run']}",
        "",
        f"Recipe `{card['recipe']}` on cluster `{card['cluster']}`, {card['nodes']} node(s), "
        f"world size {card['world_size']}. State **{card['state']}**, step "
        f"{_v(card['step'])}/{card['total_steps']}, final loss {_loss(card['final_loss'])}.",
    ]
    if src:
        extra = " ".join(f"-o {o}" for o in src.overrides)
        cmd = f"olmoctl launch --from {src.run}" + (f" {extra}" if extra else "")
        lines.append(f"Launched with `{cmd}`.")
    lines += [
        "",
        "## Record",
        "",
        "| item | value |",
        "|---|---|",
        f"| config sha256 (recipe, cluster, nodes) | `{rec.config_sha256}` |",
        f"| overrides | {', '.join(f'`{o}`' for o in rec.overrides) or '-'} |",
        f"| seed | {rec.seed} |",
        f"| olmoctl version | {_v(code.version)} |",
        f"| olmoctl git commit | `{_v(git.commit if git else None)}` |",
        "| olmoctl local changes (git diff) | "
        + (
            f"yes: `{git.diff_file or 'diff'}` sha256 `{git.diff_sha256}`"
            if git and git.dirty
            else ("none" if git else "not a git checkout")
        )
        + " |",
        f"| olmoctl source sha256 | `{_v(code.source_sha256)}` |",
        f"| Python | {_v(versions.python)} |",
        f"| torch | {_v(versions.torch)} |",
        f"| CUDA | {_v(versions.cuda)} |",
        f"| ROCm | {_v(versions.rocm)} |",
        f"| numpy | {_v(versions.numpy)} |",
        f"| devices | {_v(devices.count)} x {_v(devices.name)} "
        f"({_v(devices.type)}, {_v(devices.per_node)} per node) |",
        f"| nodes (last start) | {', '.join(env.nodes or []) or '-'} |",
        "| data | "
        + (f"synthetic corpus: {data.generator}" if data.synthetic else "token files")
        + " |",
        f"| data fingerprint sha256 | `{_v(fp.sha256)}` |",
        f"| global_indices.npy sha256 | `{_v(gi.sha256)}` ({_v(gi.size)} bytes, "
        f"{_v(gi.method)}; seed {_v(gi.seed)}, {_v(gi.num_instances)} instances) |",
        "",
        "### Data files",
        "",
        "| file | size (bytes) | sha256 | method |",
        "|---|---|---|---|",
    ]
    for f in fp.files:
        lines.append(
            f"| `{f.path}` | {_v(f.size)} | `{_v(f.sha256)}` | {_v(f.method or f.error)} |"
        )
    if not fp.files:
        lines.append("| (not fingerprinted yet: the job has not started) | | | |")
    lines += [
        "",
        "Fingerprints: whole-file sha256 up to 8 MiB; above, sha256 of the size, the first "
        "and last MiB and 16 evenly spaced 64 KiB blocks (`sampled-v1`).",
        "",
        "## Attempts",
        "",
        "| attempt | job | nodes | submitted | started | ended | state | reason | steps "
        "| script | script sha256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in rec.attempts:
        steps = f"{_v(a.first_step)}-{_v(a.last_step)}"
        lines.append(
            f"| {a.attempt_no} | {_v(a.job_id)} | {_v(a.node_list)} | "
            f"{_ts(a.submitted_at)} | {_ts(a.started_at)} | "
            f"{_ts(a.ended_at)} | {_v(a.state)} | {_v(a.reason)} | "
            f"{steps} | `{a.script_file}` | `{_v(a.script_sha256)}` |"
        )
    g = card.get("goodput")
    lines += ["", "## Goodput", ""]
    if g and g.get("goodput") is not None:
        lines += [
            f"**{100 * g['goodput']:.1f}%**: {g['progress_s']:.1f} s of new training progress over "
            f"{g['wall_s']:.1f} s of wall time since the first submission (a step trained again "
            "after a restart counts once).",
            "",
            "| progress | queued | recomputed | other (startup, saves, failed tails) |",
            "|---|---|---|---|",
            f"| {g['progress_s']:.1f} s | {g['queued_s']:.1f} s | {g['recomputed_s']:.1f} s "
            f"({g['recomputed_steps']} steps) | {g['other_s']:.1f} s |",
        ]
    else:
        lines.append("Not computable yet (no training steps or no wall time recorded).")
    lines += ledger_card.markdown(card.get("ledger"))
    if ledger_png:
        lines += ["", f"![goodput ledger]({ledger_png})"]
    lines += ["", "## Loss", ""]
    if png_name:
        what = "training and eval loss" if card.get("eval_losses") else "training loss"
        lines.append(f"![{what}]({png_name})")
    else:
        lines.append(plot_note or "No loss recorded yet.")
    if card.get("eval_losses"):
        lines += ["", "| eval set | step | loss | perplexity |", "|---|---|---|---|"]
        for name, points in card["eval_losses"].items():
            step, loss = points[-1]
            lines.append(f"| {name} | {step} | {loss:.4f} | {math.exp(min(loss, 700)):.3f} |")
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        f"olmoctl launch --from {card['run']}",
        "```",
        "",
        "<details><summary>Resolved config</summary>",
        "",
        "```yaml",
        yaml.safe_dump(
            {"recipe": r, "cluster": c, "nodes": cfg["nodes"], "time": cfg["time"]},
            sort_keys=False,
        ).rstrip(),
        "```",
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def write(
    store: Store, run: str, out: Path | None, predict: Predict | None = None
) -> dict[str, Path]:
    """RUN.md, RUN.json, RUN-loss.png and RUN-ledger.png in `out` (default RUN_DIR/card):
    all of them or, refused or failed half-way, none (nor the folders made for them)."""
    spec = spec_of(find_run(store, run))
    if out is None:
        out = Path(spec.run_dir) / "card" if record.local(spec) else Path(f"{run}-card")
    out = user_path(out, "--out")  # as a shell would: ~/cards, never a folder named ~
    # Every refusal before build(), which may bring the run's record up to date.
    made = check_folder(out, "--out")
    paths = {"markdown": out / f"{run}.md", "json": out / f"{run}.json"}
    png, ledger_png = out / f"{run}-loss.png", out / f"{run}-ledger.png"
    for p in (*paths.values(), png, ledger_png):
        if not made:  # a new folder holds nothing to refuse
            check_target(p, "--out")
    card = build(store, run, predict)
    # Taken away on failure: what this call wrote where nothing was (an older card stays).
    written: list[Path] = []
    before = {p for p in (*paths.values(), png, ledger_png) if os.path.lexists(p)}
    try:
        for d in made:
            d.mkdir(mode=0o755)
        png_name, note = None, None
        if card["losses"]:
            try:
                title = f"{run}: {card['recipe']} on {card['cluster']}"
                plot_losses(card["losses"], png, title, card["eval_losses"])
                written.append(png)
                paths["png"], png_name = png, png.name
            except OlmoctlError as e:
                note = f"No plot: {e}."
        card["plot"] = png_name
        ledger_name = None
        if card["ledger"] and card["ledger"]["wall_s"] and have_matplotlib():
            title = f"{run}: where the wall time went"
            ledger_card.plot(card["ledger"], ledger_png, title)
            written.append(ledger_png)
            paths["ledger_png"], ledger_name = ledger_png, ledger_png.name
        card["ledger_plot"] = ledger_name
        atomic_write(paths["json"], json.dumps(card, indent=2) + "\n")
        written.append(paths["json"])
        atomic_write(paths["markdown"], markdown(card, png_name, note, ledger_name))
    except BaseException:
        for p in written:
            if p not in before:
                p.unlink(missing_ok=True)
        for d in reversed(made):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    return paths
