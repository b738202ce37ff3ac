"""Recovery on the local real Slurm cluster, with `olmoctl watch` supervising.

1. Node failure: a 2-node tiny run; after step 30 a node's slurmd and tasks are killed
   (scripts/dev-cluster kill-node). Prints the seconds from the kill to the first training
   step of the next attempt, next to SlurmdTimeout (target: <= SlurmdTimeout + 60 s).
2. Goodput: one longer run with a few injected failures (ranks SIGKILLed), resumed by watch;
   prints `status RUN` goodput (target >= 95 %; it depends on run length / failure cost,
   so the run length is a flag).

Run with the dev cluster up (3 nodes):
  eval "$(scripts/dev-cluster env)"; .venv/bin/python benchmarks/recovery.py [--steps 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cluster_bench import OLMOCTL, REPO, events, wait


def olmoctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OLMOCTL, *args], env=env, capture_output=True, text=True)


def last_step(run_dir: Path) -> int:
    steps = [e["step"] for e in events(run_dir) if e.get("event") == "step"]
    return steps[-1] if steps else 0


def start(
    env: dict[str, str],
    runs: Path,
    name: str,
    *,
    steps: int,
    ckpt_every: int,
    until_done: bool = False,
) -> tuple[Path, str, subprocess.Popen]:
    """Launch a 2-node tiny run and an `olmoctl watch` over it: (run dir, job id, watch)."""
    res = olmoctl(
        env, "launch", "tiny", "-c", "dev", "-N", "2", "--name", name,
        "-o", f"cluster.runs_root={runs}", "-o", f"train.max_steps={steps}",
        "-o", f"checkpoint.interval_steps={ckpt_every}",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    args = [OLMOCTL, "watch", name, "--interval", "1", "--backoff", "0"]
    watch = subprocess.Popen(
        args + (["--until-done"] if until_done else []), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return runs / name, res.stdout.split()[2], watch


def node_failure(env: dict[str, str], runs: Path) -> None:
    conf = Path(env["SLURM_CONF"]).read_text()
    slurmd_timeout = int(re.search(r"SlurmdTimeout=(\d+)", conf).group(1))
    run_dir, job, watch = start(env, runs, "nf", steps=2000, ckpt_every=20)
    try:
        wait(lambda: last_step(run_dir) >= 30, 180, "step 30")
        nodes = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%N"], env=env, capture_output=True, text=True
        ).stdout.strip()
        victim = subprocess.run(
            ["scontrol", "show", "hostnames", nodes], env=env, capture_output=True, text=True
        ).stdout.split()[1]
        t0 = time.time()
        subprocess.run(
            [str(REPO / "scripts/dev-cluster"), "kill-node", victim],
            env=env,
            check=True,
            capture_output=True,
        )

        def resumed_step():
            started = False
            for e in events(run_dir):
                if e.get("event") == "started" and e["ts"] > t0:
                    started = True
                elif started and e.get("event") == "step":
                    return e["ts"]
            return None

        t1 = wait(resumed_step, 300, "the first step after recovery")
        print(
            f"node failure: kill -> first new step {t1 - t0:.1f} s "
            f"(SlurmdTimeout={slurmd_timeout} s; target <= {slurmd_timeout + 60} s)"
        )
    finally:
        watch.terminate()
        watch.wait()
        olmoctl(env, "cancel", "nf")
        subprocess.run([str(REPO / "scripts/dev-cluster"), "restore"], env=env, capture_output=True)


def goodput(env: dict[str, str], runs: Path, steps: int, failures: int) -> None:
    run_dir, _, watch = start(env, runs, "gp", steps=steps, ckpt_every=50, until_done=True)
    try:
        for k in range(failures):
            at = (k + 1) * steps // (failures + 1)
            wait(lambda at=at: last_step(run_dir) >= at, 1800, f"step {at}")
            pids = subprocess.run(
                ["pgrep", "-f", f"submitit.core._submit {run_dir}"], capture_output=True, text=True
            ).stdout.split()
            os.kill(int(pids[-1]), signal.SIGKILL)
            print(f"  killed a rank at step ~{at}")
            wait(lambda at=at: last_step(run_dir) > at + 5, 600, "recovery")
        watch.wait(timeout=3600)
    finally:
        watch.terminate()
    d = json.loads(olmoctl(env, "status", "gp", "--json").stdout)
    g = d["goodput"]
    print(
        f"goodput: {g['goodput']:.1%} over {g['wall_s']:.0f} s with {failures} failures, "
        f"{len(d['attempt_list'])} attempts (queued {g['queued_s']:.0f} s, recomputed "
        f"{g['recomputed_s']:.0f} s, other {g['other_s']:.0f} s; target >= 95 %)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000, help="length of the goodput run")
    ap.add_argument("--failures", type=int, default=2)
    ap.add_argument("--skip-goodput", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        env = dict(
            os.environ,
            OLMOCTL_STATE_DIR=f"{tmp}/state",
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )
        node_failure(env, Path(tmp) / "runs")
        if not a.skip_goodput:
            goodput(env, Path(tmp) / "runs", a.steps, a.failures)


if __name__ == "__main__":
    main()
