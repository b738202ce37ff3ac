"""The run card's goodput ledger: a Markdown table (seconds and share per category, beside
what plan predicts) and a stacked bar PNG (matplotlib, like the loss curve)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from olmoctl.core.track.ledger import CATEGORIES, LABELS

# One colour per category, in CATEGORIES order: training green, stalls and waste warm.
COLOURS = (
    "#bdbdbd", "#9ecae1", "#6baed6", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b"
)  # fmt: skip


def markdown(led: dict[str, Any] | None) -> list[str]:
    """The card's `## Goodput ledger` section."""
    lines = ["", "## Goodput ledger", ""]
    if not led or not led.get("wall_s"):
        return [*lines, "No wall time recorded yet."]
    wall = led["wall_s"]
    pred = led.get("predicted") or {}
    shares = pred.get("shares") or {}
    lines += [
        f"Every second of the {wall:.1f} s since the first submission, in one category "
        '(docs/recovery.md, "Goodput ledger"); beside it, the share `olmoctl plan` predicts '
        "for this run (its model has no separate starting, burn-in or hang: all in restart).",
        "",
        "| category | seconds | share | plan predicted |",
        "|---|---|---|---|",
    ]
    for k in CATEGORIES:
        v = led["seconds"].get(k, 0.0)
        p = f"{100 * shares[k]:.1f}%" if k in shares else "-"
        lines.append(f"| {LABELS[k]} | {v:.1f} | {100 * v / wall:.1f}% | {p} |")
    lines.append(f"| **wall time** | {wall:.1f} | 100% | |")
    if "simulated_goodput" in pred:
        g = pred["simulated_goodput"]
        lines += [
            "",
            f"plan --simulate: goodput {100 * g['mean']:.1f}% (p5 {100 * g['p5']:.1f}%, "
            f"p95 {100 * g['p95']:.1f}%, {g['seeds']} seeds), MFU {pred['mfu']:.2f} "
            f"({pred['mfu_source']}), checkpoint every {pred['interval_s']:.3g} s "
            f"({'async' if pred['async_saves'] else 'sync'}).",
        ]
    elif pred.get("unavailable"):
        lines += ["", f"No plan prediction: {pred['unavailable']}"]
    return lines


def plot(led: dict[str, Any], path: Path, title: str) -> None:
    """The ledger as one horizontal stacked bar (shares of the wall time), and plan's
    predicted shares as a second bar when there are some."""
    from olmoctl.core.outputs.figures import pyplot, save_png

    rows = [("this run", {k: v / led["wall_s"] for k, v in led["seconds"].items()})]
    shares = (led.get("predicted") or {}).get("shares")
    if shares:
        rows.append(("plan", shares))
    with pyplot() as plt:
        fig, ax = plt.subplots(figsize=(7, 1.9 + 0.5 * len(rows)), layout="constrained")
        for y, (_, part) in enumerate(rows):
            left = 0.0
            for k, colour in zip(CATEGORIES, COLOURS, strict=True):
                w = 100 * part.get(k, 0.0)
                label = LABELS[k] if y == 0 else None
                ax.barh(y, w, left=left, color=colour, label=label, height=0.6)
                left += w
        ax.set_yticks(range(len(rows)), [name for name, _ in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"share of {led['wall_s']:.0f} s of wall time (%)")
        ax.set_title(title)
        fig.legend(ncol=4, fontsize="small", loc="outside lower center")  # matplotlib 3.7+
        try:
            save_png(fig, path)
        finally:
            plt.close(fig)
