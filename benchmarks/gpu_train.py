"""Training speed of the real job: tokens/s and MFU with compile off and on, and the
checkpoint figures (save stall sync vs async, save GB/s against `dd conv=fsync` on the same
disk).

    .venv/bin/python benchmarks/gpu_train.py                    # CPU, tiny: checks the logic
    python benchmarks/gpu_train.py --recipe 1b --device cuda --cluster h100 [--json]
    python benchmarks/gpu_train.py --recipe 1b --device cuda --peak-tflops 989 \\
        --config train.compile=false --config train.compile=true \\
        --config train.compile=true,train.attention=flash

Each --config (comma-separated recipe overrides; default: compile off, then on) runs in its
own process (--repeats N: N alternating rounds, the median run shown): the job's Trainer
on synthetic data (world 1: FSDP2 on a GPU, the plain module on CPU), `--warmup` steps then
`--steps` measured ones, no checkpoint during the run.
tokens/s is the median of the measured steps' `tokens_per_s` events; MFU = the recipe's
FLOPs per token x tokens/s / peak (--peak-tflops, or the --cluster profile's
peak_tflops_bf16; n/a when neither is given), and the same against what a plain matmul
reaches on this device (bf16 8192^3 on a GPU, fp32 1024^3 on CPU). The first config's
process then measures the saves of its model + optimizer: through
benchmarks/checkpoint_save.py's `save_figures` when it exists (sync and async stall, GB/s,
dd), else one save through the trainer and a dd of the same size in the same folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_CONFIGS = ["train.compile=false", "train.compile=true"]
SAVE_KEYS = ("bytes", "sync_stall_s", "async_stall_s", "async_total_s", "save_gb_per_s")


def set_dotted(recipe: dict[str, Any], item: str) -> None:
    key, _, value = item.partition("=")
    *parents, leaf = key.strip().split(".")
    node = recipe
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = yaml.safe_load(value)


def bench_recipe(args: argparse.Namespace, config: str) -> dict[str, Any]:
    """The recipe as run: synthetic data, a short budget, no checkpoint until the end."""
    path = Path(args.recipe)
    if not path.exists():
        path = REPO / "recipes" / f"{args.recipe}.yaml"
    recipe = yaml.safe_load(path.read_text())
    recipe["data"] = {"synthetic": True}
    t = recipe["train"]
    t.pop("max_tokens", None)
    t["max_steps"] = args.warmup + args.steps
    t["log_interval"] = 1
    if args.micro_batch:
        t["micro_batch_size"] = args.micro_batch
    # Four micro-batches per step: gradient accumulation as in a real run, and a global batch
    # the ~400 KB synthetic corpus holds at seq 2048.
    t["global_batch_size"] = t["micro_batch_size"] * args.accum
    recipe.setdefault("checkpoint", {})["interval_steps"] = t["max_steps"] + 1
    for item in [*args.set, *filter(None, config.split(","))]:
        set_dotted(recipe, item)
    return recipe


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One config, in this process: set up the job's Trainer, run, read its step events."""
    import torch

    from olmoctl.train.model.olmo import flops_per_token
    from olmoctl.train.observe.events import EventLog
    from olmoctl.train.runtime import distributed
    from olmoctl.train.runtime.config import load_job_config
    from olmoctl.train.runtime.faults import Faults
    from olmoctl.train.runtime.signals import StopFlag
    from olmoctl.train.trainer import Trainer

    run_dir = Path(spec["run_dir"])
    recipe_path = run_dir / "recipe.json"
    denv = distributed.detect()
    job = load_job_config(str(recipe_path), str(run_dir))
    device, backend = distributed.pick_device(denv, None)
    if device.type == "cpu":
        distributed.set_cpu_threads(denv)
    distributed.init_process_group(denv, backend, device)
    events = EventLog(job.run_dir, enabled=True)
    trainer = Trainer(job, denv, device, events, StopFlag(), Faults())
    t0 = time.monotonic()
    trainer.setup()
    setup_s = time.monotonic() - t0
    real_save = trainer.save
    trainer.save = lambda: None  # type: ignore[method-assign]  # throughput only
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.monotonic()
    result = trainer.run()
    run_s = time.monotonic() - t0
    assert result.exit_status == 0, result
    steps = [
        json.loads(line)
        for line in (run_dir / "events.jsonl").read_text().splitlines()
        if '"event":"step"' in line
    ]
    warm = [s["tokens_per_s"] for s in steps[spec["warmup"] :]]
    t = job.recipe.train
    tps = statistics.median(warm)
    peak = spec["peak_tflops"] * 1e12
    fpt = flops_per_token(job.recipe.model, t.seq_len)
    mm = matmul_tflops(device)
    out: dict[str, Any] = {
        "config": spec["config"],
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "settings": {
            "compile": trainer.speed.compile,
            "attention": trainer.speed.attention or "torch default",
            "cross_entropy": trainer.speed.cross_entropy,
        },
        "micro_batch": t.micro_batch_size,
        "global_batch": t.global_batch_size,
        "seq_len": t.seq_len,
        "tokens_per_s": tps,
        "mfu": fpt * tps / peak if peak else None,
        "matmul_tflops": mm,
        "mfu_vs_matmul": fpt * tps / (mm * 1e12),
        "step_s": t.tokens_per_step / tps,
        "first_step_s": t.tokens_per_step / steps[0]["tokens_per_s"],
        "setup_s": setup_s,
        "run_s": run_s,
        "peak_mem_gb": torch.cuda.max_memory_allocated(device) / 1e9
        if device.type == "cuda"
        else None,
    }
    if spec["save"]:
        trainer.save = real_save  # type: ignore[method-assign]
        out["save"] = save_figures(trainer, device, Path(spec["save_dir"]))
    distributed.shutdown()
    return out


def matmul_tflops(device: Any) -> float:
    """What a plain square matmul reaches here (bf16 8192^3 on a GPU, fp32 1024^3 on CPU):
    the achievable ceiling MFU is also shown against."""
    import torch

    cuda = device.type == "cuda"
    n, dtype, reps = (8192, torch.bfloat16, 20) if cuda else (1024, torch.float32, 40)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    if cuda:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if cuda:
        torch.cuda.synchronize(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def dd_gb_per_s(folder: Path, nbytes: int) -> float:
    """`dd if=/dev/zero bs=1M conv=fsync` of about nbytes (at least 64 MiB) in folder."""
    count = max(64, nbytes // 2**20)
    target = folder / "dd.tmp"
    t0 = time.monotonic()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={count}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    seconds = time.monotonic() - t0
    target.unlink()
    return count * 2**20 / seconds / 1e9


def save_figures(trainer: Any, device: Any, folder: Path) -> dict[str, Any]:
    try:
        from benchmarks import checkpoint_save  # asyncckpt's (issue 16 items 2-5)
    except ImportError:
        checkpoint_save = None
    folder.mkdir(parents=True, exist_ok=True)
    if checkpoint_save is not None and hasattr(checkpoint_save, "save_figures"):
        fn = checkpoint_save.save_figures
        figures = dict(fn(trainer.model, trainer.optimizer, folder, device))
        figures.setdefault("source", "benchmarks/checkpoint_save.py")
        return figures
    # Fallback: one save through the job's own path (as configured: sync unless the recipe
    # says otherwise), then dd of the same size beside it.
    t0 = time.monotonic()
    trainer.save()
    stall = time.monotonic() - t0
    saver = getattr(trainer, "saver", None)
    if saver is not None and hasattr(saver, "wait"):
        saver.wait()
    total = time.monotonic() - t0
    newest = max(trainer.ckpt_root.glob("step_*"))
    nbytes = sum(p.stat().st_size for p in newest.rglob("*") if p.is_file())
    dd = dd_gb_per_s(trainer.ckpt_root, nbytes)
    return {
        "source": "trainer.save (benchmarks/checkpoint_save.py not present)",
        "bytes": nbytes,
        "sync_stall_s": stall if total - stall < 1e-3 else None,
        "async_stall_s": stall if total - stall >= 1e-3 else None,
        "async_total_s": total if total - stall >= 1e-3 else None,
        "save_gb_per_s": nbytes / total / 1e9,
        "dd_gb_per_s": dd,
    }


def peak_tflops(args: argparse.Namespace) -> float:
    if args.peak_tflops:
        return args.peak_tflops
    if args.cluster:
        path = Path(args.cluster)
        if not path.exists():
            path = REPO / "clusters" / f"{args.cluster}.yaml"
        return float(yaml.safe_load(path.read_text()).get("peak_tflops_bf16") or 0.0)
    return 0.0


def run_config(args: argparse.Namespace, config: str, first: bool, work: Path) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    (run_dir / "recipe.json").write_text(json.dumps(bench_recipe(args, config)))
    spec = {
        "run_dir": str(run_dir),
        "config": config,
        "warmup": args.warmup,
        "peak_tflops": peak_tflops(args),
        "save": first and not args.no_save,
        "save_dir": str(run_dir / "save"),
    }
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"gpu_train: config {config!r} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT ") :])


def fmt(value: Any, spec: str = ",.0f", scale: float = 1.0) -> str:
    return "n/a" if value is None else format(value * scale, spec)


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| config | device | compile | attention | loss | micro x global | tokens/s | MFU "
        "| matmul TFLOP/s | MFU vs matmul | step s | first step s | peak GB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["settings"]
        att = s["attention"] if isinstance(s["attention"], str) else ">".join(s["attention"])
        rows.append(
            f"| {r['config'] or '(recipe)'} | {r['device']} | {'on' if s['compile'] else 'off'} "
            f"| {att} | {s['cross_entropy']} | {r['micro_batch']} x {r['global_batch']} "
            f"| {fmt(r['tokens_per_s'])} | {fmt(r['mfu'], '.1%')} "
            f"| {fmt(r['matmul_tflops'], '.3g')} "
            f"| {fmt(r['mfu_vs_matmul'], '.1%')} | {fmt(r['step_s'], '.3f')} "
            f"| {fmt(r['first_step_s'], '.2f')} | {fmt(r['peak_mem_gb'], '.1f')} |"
        )
    save = next((r["save"] for r in results if r.get("save")), None)
    if save:
        ratio = (
            save["save_gb_per_s"] / save["dd_gb_per_s"]
            if save.get("save_gb_per_s") and save.get("dd_gb_per_s")
            else None
        )
        rows += [
            "",
            f"checkpoint save ({save.get('source', '')}):",
            "| GB | sync stall s | async stall s | async total s | save GB/s | dd GB/s | save/dd |",
            "|---|---|---|---|---|---|---|",
            f"| {fmt(save.get('bytes'), '.3g', 1e-9)} | {fmt(save.get('sync_stall_s'), '.2f')} "
            f"| {fmt(save.get('async_stall_s'), '.3f')} | {fmt(save.get('async_total_s'), '.2f')} "
            f"| {fmt(save.get('save_gb_per_s'), '.2f')} | {fmt(save.get('dd_gb_per_s'), '.2f')} "
            f"| {fmt(ratio, '.2f')} |",
        ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recipe", default="tiny", help="recipe name or YAML path (default tiny)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--config", action="append", help="comma-separated overrides, repeatable")
    ap.add_argument("--set", action="append", default=[], help="override for every config")
    ap.add_argument("--steps", type=int, default=8, help="measured steps (default 8)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured first steps (default 3)")
    ap.add_argument("--micro-batch", type=int, default=0, help="default: the recipe's")
    ap.add_argument("--accum", type=int, default=4, help="micro-batches per step (default 4)")
    ap.add_argument("--repeats", type=int, default=1, help="alternating rounds; median shown")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="per device, for MFU")
    ap.add_argument("--cluster", default="", help="profile name/path: its peak_tflops_bf16")
    ap.add_argument("--no-save", action="store_true", help="skip the checkpoint figures")
    ap.add_argument("--workdir", default="", help="folder for runs and saves (default: /tmp)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("gpu_train: error: --device cuda but no GPU is visible", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="gpu-train-", dir=args.workdir or None))
    configs = args.config or DEFAULT_CONFIGS
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    try:
        # Alternating rounds, so a slow spell of a shared machine hits every config alike.
        for round_ in range(args.repeats):
            for i, c in enumerate(configs):
                runs[c].append(run_config(args, c, i == 0 and round_ == 0, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = []
    for c in configs:
        ordered = sorted(runs[c], key=lambda r: r["tokens_per_s"])
        median = dict(ordered[len(ordered) // 2])
        median["tokens_per_s_runs"] = [r["tokens_per_s"] for r in runs[c]]
        median["save"] = next((r["save"] for r in runs[c] if r.get("save")), None)
        results.append(median)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
