"""`olmoctl export RUN --format hf --out DIR`: a checkpoint as a transformers model."""

from __future__ import annotations

import json

import typer

from olmoctl.cli import complete, options
from olmoctl.cli.text import echo

INT32_MAX = 2**31 - 1


def export(
    run: str = typer.Argument(..., autocompletion=complete.runs, help="The run."),
    out: str = typer.Option(..., "--out", help="The model directory to create (must not exist)."),
    fmt: str = typer.Option("hf", "--format", help="Output format: hf (transformers OLMo)."),
    step: int | None = typer.Option(
        None,
        "--step",
        help="The checkpoint's step (default: the newest complete one).",
        click_type=options.INT,
        callback=options.bounded("--step", 0, options.INT64_MAX),
    ),
    dtype: str = typer.Option("fp32", "--dtype", help="Weights dtype: fp32, bf16 or fp16."),
    eos_token_id: int | None = typer.Option(
        None,
        "--eos-token-id",
        help="config.json's eos_token_id (default: the recipe's tokenizer's, when known).",
        click_type=options.INT,
        callback=options.bounded("--eos-token-id", 0, INT32_MAX),
    ),
    pad_token_id: int | None = typer.Option(
        None,
        "--pad-token-id",
        help="config.json's pad_token_id (default: the recipe's tokenizer's, when known).",
        click_type=options.INT,
        callback=options.bounded("--pad-token-id", 0, INT32_MAX),
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Convert a run's checkpoint (any world size) into a model directory that
    `transformers.AutoModelForCausalLM.from_pretrained(DIR)` loads: config.json +
    model.safetensors (+ olmoctl-export.json saying where it came from)."""
    from olmoctl.core.outputs import export as core
    from olmoctl.errors import UsageError, shown
    from olmoctl.schemas.hf import DTYPES
    from olmoctl.store import Store

    if dtype not in DTYPES:
        raise UsageError(f"--dtype {shown(dtype)} is not one of {', '.join(DTYPES)}")
    plan = core.plan(Store(), run, fmt=fmt, step=step, out=out)
    if not as_json:
        echo(f"exporting {run} step {plan.step} from {plan.checkpoint} ...", err=True)
    summary = core.export(plan, dtype=dtype, eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    gb = summary["bytes"] / 1e9
    echo(
        f"wrote {summary['out']}: {summary['parameters']:,} parameters, {gb:.2f} GB ({dtype}); "
        f"load with AutoModelForCausalLM.from_pretrained({summary['out']!r})"
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
