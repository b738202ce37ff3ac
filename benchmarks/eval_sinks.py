"""What in-loop evaluation and the metrics sinks cost the job (one CPU process, in-process
run_job): tokens/s of plain training against training with TensorBoard + W&B (offline) on,
and the seconds an eval of one set takes against a training step. Runs alternate (plain,
sinks, eval, plain, ...) and medians are compared.

    .venv/bin/python benchmarks/eval_sinks.py [--steps 60] [--repeats 3] [--batches 4]

Prints the rates, the ratio plain/sinks and eval seconds per set and per step of training.
The sinks' cost is about fixed per step (wandb.log ~1 ms, TensorBoard ~0.3 ms on the main
thread, plus wandb-core's own process): large against tiny's 30 ms CPU steps, nothing
against a GPU step of seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from olmoctl.train.run import run_job  # noqa: E402


def run(recipe: dict[str, Any], workdir: Path) -> list[dict[str, Any]]:
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    path = run_dir / "recipe.json"
    path.write_text(json.dumps(recipe))
    outcome = run_job(str(path), str(run_dir))
    assert outcome.exit_status == 0, outcome
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


def rate(evs: list[dict[str, Any]], warmup: int) -> float:
    """Median tokens/s over the step events after `warmup` (saves and evals excluded)."""
    return statistics.median(
        e["tokens_per_s"] for e in evs if e["event"] == "step" and e["step"] > warmup
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=4, help="eval.batches")
    args = ap.parse_args()
    base = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    base["train"].update(max_steps=args.steps, micro_batch_size=24, heartbeat_interval_s=30)
    base["checkpoint"]["interval_steps"] = args.steps
    sinks = {**base, "metrics": {"tensorboard": True, "wandb": {"project": "bench"}}}
    every = max(1, args.steps // 4)
    evaluated = {
        **base,
        "eval": {"interval_steps": every, "held_out_fraction": 0.05, "batches": args.batches},
    }
    plain_rates, sink_rates, eval_s, step_s = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for _ in range(args.repeats):
            plain_rates.append(rate(run(base, work), 5))
            sink_rates.append(rate(run(sinks, work), 5))
            evs = run(evaluated, work)
            eval_s += [e["seconds"] for e in evs if e["event"] == "eval"]
            tokens = base["train"]["global_batch_size"] * base["train"]["seq_len"]
            step_s.append(tokens / rate(evs, 5))
    p, s = statistics.median(plain_rates), statistics.median(sink_rates)
    e, t = statistics.median(eval_s), statistics.median(step_s)
    print(f"tokens/s plain {p:,.0f}, with TensorBoard + W&B offline {s:,.0f}: ratio {p / s:.3f}")
    print(
        f"eval of one set ({args.batches} global batches, forward only): {e:.3f} s median "
        f"= {e / t:.2f} training steps ({t:.3f} s each)"
    )


if __name__ == "__main__":
    main()
