"""Recovery on the local real Slurm cluster, with `olmoctl watch` supervising.

1. Node failure: a 2-node tiny run; after step 30 a node's slurmd and tasks are killed
   (scripts/dev-cluster kill-node). Prints the seconds from the kill to the first training
   step of the next attempt, next to SlurmdTimeout, for both paths in one invocation:
   - through the queue (no spares: NODE_FAIL, Slurm's requeue / watch; target <=
     SlurmdTimeout + 60 s),
   - in the allocation (--spare-nodes 1: the same job trains on the spare, docs/recovery.md;
     target <= 15 s on the dev cluster).
2. Goodput: one longer run with a few injected failures, resumed by watch; prints `status
   RUN` goodput (target >= 95 %; it depends on run length / failure cost, so the run length
   is a flag). `--node-losses`: the failures are lost nodes of a run with a spare (the first
   recovered in the allocation, the next through the queue once the spare is used), else
   ranks SIGKILLed.

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
    spares: int = 0,
) -> tuple[Path, str, subprocess.Popen]:
    """Launch a 2-node tiny run and an `olmoctl watch` over it: (run dir, job id, watch)."""
    res = olmoctl(
        env, "launch", "tiny", "-c", "dev", "-N", "2", "--name", name,
        "--spare-nodes", str(spares),
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


def _victim(env: dict[str, str], run_dir: Path, job: str) -> str:
    """A training node that is not the batch host (whose loss ends the batch script)."""
    batch = subprocess.run(["scontrol", "-o", "show", "job", job], env=env,
                           capture_output=True, text=True).stdout  # fmt: skip
    host = re.search(r"BatchHost=(\S+)", batch)
    started = [e for e in events(run_dir) if e.get("event") == "started"][-1]
    return next(n for n in started["nodes"] if not host or n != host.group(1))


def node_failure(env: dict[str, str], runs: Path, spares: int) -> float:
    conf = Path(env["SLURM_CONF"]).read_text()
    slurmd_timeout = int(re.search(r"SlurmdTimeout=(\d+)", conf).group(1))
    name = f"nf{spares}"
    run_dir, job, watch = start(env, runs, name, steps=2000, ckpt_every=20, spares=spares)
    try:
        wait(lambda: last_step(run_dir) >= 30, 300, "step 30")
        victim = _victim(env, run_dir, job)
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

        t1 = wait(resumed_step, 600, "the first step after recovery")
        d = json.loads(olmoctl(env, "status", name, "--json").stdout)
        jobs = {a["job_id"] for a in d["attempt_list"]}
        path = "in the allocation" if spares else "through the queue"
        target = 15 if spares else slurmd_timeout + 60
        print(
            f"node failure, {path}: kill -> first new step {t1 - t0:.1f} s "
            f"(SlurmdTimeout={slurmd_timeout} s; target <= {target} s; "
            f"{len(d['attempt_list'])} attempts in {len(jobs)} job(s))"
        )
        return t1 - t0
    finally:
        watch.terminate()
        watch.wait()
        olmoctl(env, "cancel", name)
        subprocess.run([str(REPO / "scripts/dev-cluster"), "restore"], env=env, capture_output=True)


def goodput(env: dict[str, str], runs: Path, steps: int, failures: int, nodes: bool) -> None:
    run_dir, job, watch = start(env, runs, "gp", steps=steps, ckpt_every=50, until_done=True,
                                spares=1 if nodes else 0)  # fmt: skip
    dev = str(REPO / "scripts/dev-cluster")
    try:
        for k in range(failures):
            at = (k + 1) * steps // (failures + 1)
            wait(lambda at=at: last_step(run_dir) >= at, 1800, f"step {at}")
            if nodes:
                victim = _victim(env, run_dir, job)
                subprocess.run([dev, "kill-node", victim], env=env, check=True,
                               capture_output=True)  # fmt: skip
                print(f"  killed node {victim} at step ~{at}")

                def down(victim: str = victim) -> bool:
                    state = subprocess.run(["sinfo", "-h", "-n", victim, "-o", "%T"], env=env,
                                           capture_output=True, text=True).stdout  # fmt: skip
                    return "down" in state

                # Back once Slurm has seen it go (a requeued job may need every node again).
                wait(down, 300, f"{victim} down")
                subprocess.run([dev, "revive-node", victim], env=env, capture_output=True)
                wait(lambda at=at: last_step(run_dir) > at + 5, 900, "recovery")
                continue
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
    led = d.get("ledger") or {}
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in (led.get("seconds") or {}).items() if v)
    print(f"ledger over {led.get('wall_s', 0):.1f} s: {parts}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000, help="length of the goodput run")
    ap.add_argument("--failures", type=int, default=2)
    ap.add_argument("--skip-goodput", action="store_true")
    ap.add_argument("--node-losses", action="store_true", help="lose nodes, not ranks")
    ap.add_argument("--skip-node-failure", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        env = dict(
            os.environ,
            OLMOCTL_STATE_DIR=f"{tmp}/state",
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )
        # A state dir each: the first run's lost node would otherwise be excluded from the
        # second (it needs all 3 nodes of the dev cluster).
        if not a.skip_node_failure:
            q_env = dict(env, OLMOCTL_STATE_DIR=f"{tmp}/state-q")
            a_env = dict(env, OLMOCTL_STATE_DIR=f"{tmp}/state-a")
            queue = node_failure(q_env, Path(tmp) / "runs", 0)
            alloc = node_failure(a_env, Path(tmp) / "runs", 1)
            print(f"in the allocation: {alloc:.1f} s vs through the queue: {queue:.1f} s")
        if not a.skip_goodput:
            goodput(env, Path(tmp) / "runs", a.steps, a.failures, a.node_losses)


if __name__ == "__main__":
    main()
