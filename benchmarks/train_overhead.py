"""Trainer overhead: tokens/s of olmoctl's trainer (one CPU process: events with fsync,
heartbeat thread, signal flag all-reduce, lr schedule, clipping, data from the memmap)
against a plain single-process PyTorch loop on the same model, data, micro-batching and
optimizer. Runs alternate (trainer, plain, trainer, ...) and the medians are compared.

    .venv/bin/python benchmarks/train_overhead.py [--recipe recipes/tiny.yaml] [--steps 60]
        [--micro-batch N] [--set model.d_model=256 ...] [--repeats 3]

Prints both rates and the cost ratio plain/trainer (target: <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from olmoctl.schemas.recipe import Recipe  # noqa: E402
from olmoctl.train.data.tokens import (  # noqa: E402
    BatchLoader,
    TokenDataset,
    build_global_indices,
    write_synthetic,
)
from olmoctl.train.model.olmo import OLMo, loss_fn  # noqa: E402
from olmoctl.train.model.optim import (  # noqa: E402
    build_optimizer,
    clip_at,
    clip_grad_norm,
    lr_at,
    set_lr,
)
from olmoctl.train.run import run_job  # noqa: E402


def apply(recipe: dict[str, Any], dotted: list[str]) -> None:
    for item in dotted:
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = recipe
        for p in parents:
            node = node[p]
        node[leaf] = yaml.safe_load(value)


def trainer_rate(recipe: dict[str, Any], workdir: Path, warmup: int) -> float:
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    path = run_dir / "recipe.json"
    path.write_text(json.dumps(recipe))
    outcome = run_job(str(path), str(run_dir))
    assert outcome.exit_status == 0, outcome
    steps = [
        json.loads(line)
        for line in (run_dir / "events.jsonl").read_text().splitlines()
        if '"event":"step"' in line
    ]
    a, b = steps[warmup - 1], steps[-1]
    return (b["tokens_seen"] - a["tokens_seen"]) / (b["ts"] - a["ts"])


def plain_rate(recipe: Recipe, data_dir: Path, warmup: int) -> float:
    t = recipe.train
    ds = TokenDataset([data_dir / "data" / "synthetic.npy"], "uint16", t.seq_len)
    indices = build_global_indices(ds.num_instances, t.total_steps * t.global_batch_size, t.seed)
    loader = BatchLoader(ds, indices, t.global_batch_size, 0, 1)
    torch.manual_seed(t.seed)
    model = OLMo(recipe.model)
    model.init_weights(t.seed)
    opt = build_optimizer(model, recipe.optim)
    accum, mbs = t.global_batch_size // t.micro_batch_size, t.micro_batch_size
    t0 = 0.0
    for step in range(t.total_steps):
        if step == warmup:
            t0 = time.perf_counter()
        batch = loader.local_batch(step)
        set_lr(opt, lr_at(step, recipe.optim.lr, recipe.schedule, t.total_steps))
        for m in range(accum):
            mb = torch.from_numpy(batch[m * mbs : (m + 1) * mbs])
            (loss_fn(model(mb), mb) / accum).backward()
        clip_grad_norm(model, clip_at(step, recipe.optim))
        opt.step()
        opt.zero_grad(set_to_none=True)
    tokens = (t.total_steps - warmup) * t.tokens_per_step
    return tokens / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default=str(REPO / "recipes" / "tiny.yaml"))
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--micro-batch", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--set", action="append", default=[], help="dotted override, e.g. model.d_model=256"
    )
    args = ap.parse_args()

    raw = yaml.safe_load(Path(args.recipe).read_text())
    raw["train"].update(max_steps=args.steps, max_tokens=None)
    raw["checkpoint"] = {"interval_steps": 10**9, "keep_last": 1}
    raw["data"] = {"synthetic": True}
    if args.micro_batch:
        raw["train"]["micro_batch_size"] = args.micro_batch
    apply(raw, args.set)
    recipe = Recipe.model_validate(raw)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_synthetic(work)
        trainer, plain = [], []
        for _ in range(args.repeats):
            trainer.append(trainer_rate(raw, work, args.warmup))
            torch.set_num_threads(threads)
            plain.append(plain_rate(recipe, work, args.warmup))
    tr, pl = statistics.median(trainer), statistics.median(plain)
    m = recipe.model
    print(
        f"model d_model={m.d_model} n_layers={m.n_layers} params={m.num_params():,}; "
        f"batch {recipe.train.global_batch_size}x{recipe.train.seq_len}, micro-batch "
        f"{recipe.train.micro_batch_size}; {args.steps} steps ({args.warmup} warm-up), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"trainer: {tr:,.0f} tokens/s  (runs: {', '.join(f'{x:,.0f}' for x in trainer)})")
    print(f"plain:   {pl:,.0f} tokens/s  (runs: {', '.join(f'{x:,.0f}' for x in plain)})")
    print(f"cost ratio trainer/plain = {pl / tr:.3f}x (target <= 1.10x)")
    np.testing.assert_(tr > 0 and pl > 0)


if __name__ == "__main__":
    main()
