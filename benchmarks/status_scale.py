"""How `olmoctl status` scales: a store with 10 vs 1,000 runs (5 attempts each), the
unfinished attempts pointing at real held jobs of the local Slurm cluster.

Two shapes: "history" (10 unfinished runs in both stores, the other 990 finished: what a
store looks like after months of use; the target applies here) and "all live" (every run
unfinished: the worst case, where status must read 1,000 runs' events).

Prints the median wall time of `status --json` and `status` (table) for both sizes, and the
sacct RPCs per call as slurmdbd counts them (`sacctmgr show stats`, DBD_GET_JOBS_COND).
Targets: 1,000-run status within 1.3x of 10-run status; exactly one sacct RPC per call.

Run with the dev cluster up:  eval "$(scripts/dev-cluster env)"; .venv/bin/python
benchmarks/status_scale.py [--held-jobs 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from olmoctl.core.launch import specs  # noqa: E402
from olmoctl.store import Store  # noqa: E402


def sacct_rpcs() -> int:
    out = subprocess.run(["sacctmgr", "show", "stats"], capture_output=True, text=True).stdout
    m = re.search(r"DBD_GET_JOBS_COND\s+\(\s*\d+\)\s+count:(\d+)", out)
    return int(m.group(1)) if m else -1


def fill(state: Path, runs_root: Path, n_runs: int, held: list[str], live: int) -> None:
    store = Store(state)
    spec = specs.resolve("tiny", "dev", nodes=1, overrides=[f"cluster.runs_root={runs_root}"])
    now = time.time()
    with store.tx() as tx:
        for i in range(n_runs):
            name = f"bench-{i:04d}"
            s = spec.model_copy(update={"name": name, "run_dir": f"{runs_root}/{name}"})
            tx.create_run(s, state="PENDING", created_at=now)
            for k in range(5):
                last = k == 4 and i < live
                tx.add_attempt(
                    name,
                    cluster="dev",
                    nodes=1,
                    job_id=held[(i * 5 + k) % len(held)],
                    state="PENDING" if last else "NODE_FAIL",
                    klass=None if last else "NODE_FAIL",
                    submitted_at=now - 3600,
                    ended_at=None if last else now - 1800,
                )
    store.close()


def timed(args: list[str], env: dict[str, str], repeat: int) -> tuple[float, int]:
    walls, rpcs = [], []
    for _ in range(repeat):
        before = sacct_rpcs()
        t0 = time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        rpcs.append(sacct_rpcs() - before)
    return statistics.median(walls), max(rpcs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--held-jobs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    held = []
    for _ in range(a.held_jobs):
        out = subprocess.run(
            ["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap", "true"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        held.append(out.strip().split(";")[0])
    olmoctl = str(Path(sys.executable).parent / "olmoctl")
    try:
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for shape, n in (
                ("history", 10),
                ("history", 1000),
                ("all live", 10),
                ("all live", 1000),
            ):
                state = Path(tmp) / f"state-{shape[0]}-{n}"
                fill(state, Path(tmp) / "runs", n, held, live=10 if shape == "history" else n)
                env = dict(os.environ, OLMOCTL_STATE_DIR=str(state))
                subprocess.run(
                    [olmoctl, "status", "--json"], env=env, check=True, capture_output=True
                )  # warm: classify the old attempts once
                results[shape, n] = (
                    timed([olmoctl, "status", "--json"], env, a.repeat),
                    timed([olmoctl, "status"], env, a.repeat),
                )
    finally:
        subprocess.run(["scancel", *held], check=False)
    head = f"{'shape':>9} {'runs':>6} {'attempts':>9} {'status --json':>14} {'status':>8}"
    print(head + f" {'sacct RPCs/call':>16}")
    for (shape, n), ((wj, rj), (wt, rt)) in results.items():
        print(f"{shape:>9} {n:>6} {n * 5:>9} {wj:>13.3f}s {wt:>7.3f}s {max(rj, rt):>16}")
    for shape in ("history", "all live"):
        (j10, _), (t10, _) = results[shape, 10]
        (j1k, _), (t1k, _) = results[shape, 1000]
        target = " (target <= 1.3x)" if shape == "history" else " (worst case, no target)"
        print(f"{shape}: 1000/10 runs: --json {j1k / j10:.2f}x, table {t1k / t10:.2f}x{target}")


if __name__ == "__main__":
    main()
