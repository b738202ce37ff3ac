"""Checkpoint saves: how long training stalls per save (synchronous vs asynchronous) and how
fast a save writes (GB/s) against `dd bs=1M conv=fsync` on the same filesystem.

    .venv/bin/python benchmarks/checkpoint_save.py [--shape tiny|1b] [--layers N]
        [--dir DIR] [--threads 1,2,4,8] [--repeats 2]

The state is the OLMo model of recipes/SHAPE.yaml (1b: its width, vocabulary and
`--layers` blocks, so it fits a CPU's memory) plus AdamW's moments, as the trainer saves it
(olmoctl.train.checkpoint.async_save.Saver, one process, gloo). "Training" between saves is AdamW
steps on fixed gradients, which change every tensor the save holds, as a real step does.

- stall: wall time the trainer loses per save: the whole save when synchronous; the call
  plus the wait for the staging copy before the next optimizer step when asynchronous.
  Target: async <= 0.1 x sync.
- GB/s: checkpoint bytes / synchronous save seconds (DCP files fsync'd, commit included),
  per `checkpoint.writer_threads`, against dd of the same size. Target: >= 0.7 x dd.

From another benchmark (benchmarks/gpu_train.py, on a GPU with the real model): call
`save_figures(model, optimizer, folder, device)` (or `checkpoint_figures(..., step=...)`
with your own training step) inside an initialised process group; it returns the figures
as a dict and `print_figures` prints them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from olmoctl.schemas.recipe import ModelConfig  # noqa: E402
from olmoctl.train.checkpoint.async_save import Saver  # noqa: E402
from olmoctl.train.model.olmo import OLMo  # noqa: E402
from olmoctl.train.runtime.faults import Faults  # noqa: E402


def dd_gbps(directory: Path, nbytes: int) -> float:
    """`dd if=/dev/zero bs=1M conv=fsync` of nbytes (at least 64 MiB) into directory."""
    count = max(64, nbytes >> 20)
    target = directory / "dd.bin"
    t0 = time.monotonic()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={count}", "conv=fsync"],
        check=True, capture_output=True, timeout=3600,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    target.unlink()
    return count * (1 << 20) / seconds / 1e9


def _saver(root: Path, device: torch.device, async_save: bool, threads: int) -> Saver:
    return Saver(
        root,
        async_save=async_save,
        writer_threads=threads,
        keep_last=1,
        permanent_every=0,
        device=device,
        faults=Faults({}),
        emit=lambda event: None,
        log=lambda msg: None,
    )


def _one_save(
    saver: Saver,
    step_no: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: Callable[[], None],
) -> tuple[float, float, int]:
    """(training stall s, save wall s, bytes) of one save followed by training steps until
    the save is done (async) or none (sync)."""
    marker = {"step": step_no}
    saver.save(step_no, model, optimizer, trainer_state={"step": step_no}, marker=marker)
    job = saver._job
    assert job is not None
    while not job.done.is_set():
        saver.before_update()
        step()
    saver.wait()
    return job.stall_s, job.seconds, job.nbytes


def checkpoint_figures(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    directory: Path,
    device: torch.device,
    *,
    step: Callable[[], None],
    threads: tuple[int, ...] = (4,),
    repeats: int = 2,
) -> dict[str, Any]:
    """Save stall sync vs async and save GB/s vs dd, in `directory` (emptied afterwards).
    `step()` is one training step (it must change the parameters, as optimizer.step does);
    call inside an initialised process group (every rank)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"gbps_by_threads": {}}
    n = 0
    sync_stalls: dict[int, list[float]] = {}
    for t in threads:
        saver = _saver(directory / f"sync-{t}", device, False, t)
        rates = []
        for _ in range(repeats):
            n += 1
            stall, seconds, nbytes = _one_save(saver, n, model, optimizer, step)
            sync_stalls.setdefault(t, []).append(stall)
            rates.append(nbytes / seconds / 1e9)
            out["state_gb"] = nbytes / 1e9
        out["gbps_by_threads"][t] = statistics.median(rates)
    best_t = max(out["gbps_by_threads"], key=out["gbps_by_threads"].get)
    saver = _saver(directory / "async", device, True, best_t)
    async_stalls, async_totals = [], []
    for _ in range(repeats + 1):  # the first async save allocates the staging buffers
        n += 1
        stall, seconds, _ = _one_save(saver, n, model, optimizer, step)
        async_stalls.append(stall)
        async_totals.append(seconds)
    rank0 = not dist.is_initialized() or dist.get_rank() == 0
    out.update(
        threads=best_t,
        sync_stall_s=statistics.median(sync_stalls[best_t]),
        async_first_stall_s=async_stalls[0],
        async_stall_s=statistics.median(async_stalls[1:]),
        async_total_s=statistics.median(async_totals[1:]),
        save_gbps=out["gbps_by_threads"][best_t],
        dd_gbps=dd_gbps(directory, int(out["state_gb"] * 1e9)) if rank0 else None,
    )
    out["stall_ratio"] = out["async_stall_s"] / out["sync_stall_s"]
    if out["dd_gbps"]:
        out["save_vs_dd"] = out["save_gbps"] / out["dd_gbps"]
    shutil.rmtree(directory, ignore_errors=True)
    return out


def save_figures(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    folder: Path,
    device: torch.device,
    *,
    threads: tuple[int, ...] = (8,),
    repeats: int = 2,
) -> dict[str, Any]:
    """checkpoint_figures for benchmarks/gpu_train.py, after its run: "training" is AdamW
    steps on zero gradients (weight decay and the moments still change every tensor),
    and the keys are the ones its table prints (bytes, sync_stall_s, async_stall_s,
    async_total_s, save_gb_per_s, dd_gb_per_s) plus everything checkpoint_figures has."""
    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    f = checkpoint_figures(
        model, optimizer, folder, device, step=optimizer.step, threads=threads, repeats=repeats
    )
    return {
        **f,
        "bytes": f["state_gb"] * 1e9,
        "save_gb_per_s": f["save_gbps"],
        "dd_gb_per_s": f["dd_gbps"],
    }


def print_figures(f: dict[str, Any], where: str = "") -> None:
    print(f"checkpoint of {f['state_gb']:.2f} GB (model + AdamW){where}")
    for t, gbps in f["gbps_by_threads"].items():
        print(f"  sync save, writer_threads={t}: {gbps:.2f} GB/s")
    print(f"  dd bs=1M conv=fsync, same filesystem: {f['dd_gbps']:.2f} GB/s")
    print(f"  save / dd = {f.get('save_vs_dd', float('nan')):.2f} (target >= 0.7)")
    print(
        f"  training stall per save (writer_threads={f['threads']}): sync "
        f"{f['sync_stall_s']:.3f} s, async "
        f"{f['async_stall_s']:.3f} s (first async save {f['async_first_stall_s']:.3f} s: "
        f"allocates the staging buffers); async / sync = {f['stall_ratio']:.3f} "
        "(target <= 0.1)"
    )
    print(f"  async save total (in the background): {f['async_total_s']:.2f} s")


def _model(shape: str, layers: int | None) -> ModelConfig:
    recipe = yaml.safe_load((REPO / "recipes" / f"{shape}.yaml").read_text())
    cfg = recipe["model"]
    if layers:
        cfg["n_layers"] = layers
    return ModelConfig.model_validate(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="1b", help="recipes/SHAPE.yaml's model (tiny, 1b...)")
    ap.add_argument("--layers", type=int, default=1, help="blocks (0: the recipe's)")
    ap.add_argument("--dir", default=None, help="where to save (default: a temp dir in /tmp)")
    ap.add_argument("--threads", default="1,2,4,8", help="writer_threads values to compare")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    if not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    cfg = _model(args.shape, args.layers or None)
    model = OLMo(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizer.step()  # AdamW's moments exist, as after the first training step
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="ckpt-bench-"))
    threads = tuple(int(t) for t in re.split(r"[, ]+", args.threads) if t)
    figs = checkpoint_figures(
        model,
        optimizer,
        base / "bench",
        torch.device("cpu"),
        step=optimizer.step,
        threads=threads,
        repeats=args.repeats,
    )
    params = sum(p.numel() for p in model.parameters())
    where = f", {args.shape} shape with {cfg.n_layers} layer(s), {params / 1e6:.0f}M params"
    print_figures(figs, f"{where}, in {base}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
