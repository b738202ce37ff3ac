"""Burn-in on the local real Slurm cluster (issue 17 item 6). Prints figures:

1. What burn-in adds to a job's start: tiny on 2 and 3 nodes, burn-in on vs off; seconds
   from submission to the first training step, and the burn-in's own time (its `burnin`
   event). Goal: <= 60 s added by default (--goal).
2. One bad node (node2 slowed to --cpu (5%) of one CPU through its cgroup quota), tiny on 2
   nodes: seconds from submission to the first training step, and to the run's end,
   - with a spare (--spare-nodes 1: burn-in leaves node2 out, same job),
   - without spares (burn-in finds node2, the job requeues itself once without it),
   - burn-in off (today: nothing notices; training runs on the slow node, and a node that
     fails outright costs a failed attempt and a resubmission per failure).

Run with the dev cluster up (3 nodes), alone on it (it slows a node):
  flock -x /work/coord/cluster.lock .venv/bin/python benchmarks/burnin.py [--goal 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cluster_bench import OLMOCTL, REPO, events
from cluster_bench import wait as wait_for

DEV_CLUSTER = str(REPO / "scripts" / "dev-cluster")
GUARD_S = 1800.0


def wait(pred, what: str):
    return wait_for(pred, GUARD_S, what)


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.runs = tmp / "runs"
        self.tmp = tmp
        self.env = dict(os.environ)
        self.env["PATH"] = f"{Path(sys.executable).parent}:{self.env['PATH']}"
        self.n = 0

    def olmoctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([OLMOCTL, *args], env=self.env, capture_output=True, text=True)

    def run(self, nodes: int, *extra: str, slow: str | None = None, cpu: str = "5%") -> dict:
        """Submit tiny; seconds from submission to the first step and to the end."""
        self.n += 1
        name = f"b{self.n}"
        # a store of its own: node health from an earlier run must not steer this one
        self.env["OLMOCTL_STATE_DIR"] = str(self.tmp / f"state-{name}")
        run_dir = self.runs / name
        if slow:
            subprocess.run([DEV_CLUSTER, "slow-node", slow, "--cpu", cpu], check=True)
        try:
            t0 = time.time()
            res = self.olmoctl(
                "launch", "tiny", "-c", "dev", "-N", str(nodes), "--name", name,
                "-o", f"cluster.runs_root={self.runs}", *extra,
            )  # fmt: skip
            if res.returncode != 0:
                raise SystemExit(f"launch failed: {res.stderr}")

            def first_step() -> float | None:
                steps = [e for e in events(run_dir) if e.get("event") == "step"]
                return steps[0]["ts"] if steps else None

            t_step = wait(first_step, f"{name}'s first step")
            if slow and any(e["event"] == "burnin" for e in events(run_dir)):
                # node2 was left out already: lift the quota so only the check felt it
                subprocess.run([DEV_CLUSTER, "unslow-node", slow], check=True)
                slow = None

            def ended() -> dict | None:
                d = json.loads(self.olmoctl("status", name, "--json").stdout or "{}")
                return d if d.get("state") in ("COMPLETED", "FAILED", "CODE_ERROR") else None

            detail = wait(ended, f"{name} to end")
            t_end = max(e["ts"] for e in events(run_dir))
        finally:
            if slow:
                subprocess.run([DEV_CLUSTER, "unslow-node", slow], check=True)
        burnins = [e for e in events(run_dir) if e["event"] == "burnin"]
        return {
            "first_step_s": t_step - t0,
            "end_s": t_end - t0,
            "burnin_s": sum(b.get("seconds") or 0 for b in burnins),
            "attempts": len(detail["attempt_list"]),
            "state": detail["state"],
            "actions": [b["action"] for b in burnins],
            "trained_on": next(
                (e["nodes"] for e in reversed(events(run_dir)) if e["event"] == "started"), []
            ),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--goal", type=float, default=60.0, help="seconds burn-in may add (60)")
    ap.add_argument("--cpu", default="5%", help="the slowed node's share of one CPU (5%%)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per configuration")
    args = ap.parse_args()
    off = ("-o", "cluster.burnin.enabled=false")
    with tempfile.TemporaryDirectory(prefix="olmoctl-bench-burnin-") as tmp:
        b = Bench(Path(tmp))
        print("1. time added to the start by burn-in (healthy nodes)")
        print(f"{'nodes':>5} {'on: 1st step s':>15} {'off: 1st step s':>16} {'added s':>8} "
              f"{'burn-in s':>10}")  # fmt: skip
        worst = 0.0
        for nodes in (2, 3):
            for _ in range(args.repeats):
                on, no = b.run(nodes), b.run(nodes, *off)
                added = on["first_step_s"] - no["first_step_s"]
                worst = max(worst, added)
                print(f"{nodes:>5} {on['first_step_s']:>15.1f} {no['first_step_s']:>16.1f} "
                      f"{added:>8.1f} {on['burnin_s']:>10.1f}")  # fmt: skip
        verdict = "meets" if worst <= args.goal else "MISSES"
        print(f"   most added: {worst:.1f} s ({verdict} the goal of <= {args.goal:g} s)")
        print(f"\n2. one bad node (node2 at {args.cpu} of a CPU), tiny on 2 nodes")
        print(f"{'configuration':<34} {'1st step s':>10} {'end s':>7} {'attempts':>8}  trained on")
        for label, extra in (
            ("spare node (--spare-nodes 1)", ("--spare-nodes", "1")),
            ("no spare: burn-in, one requeue", ()),
            ("burn-in off (today)", off),
        ):
            for _ in range(args.repeats):
                r = b.run(2, *extra, slow="node2", cpu=args.cpu)
                print(f"{label:<34} {r['first_step_s']:>10.1f} {r['end_s']:>7.1f} "
                      f"{r['attempts']:>8}  {','.join(r['trained_on'])} "
                      f"({r['state']}; burn-in: {'/'.join(r['actions']) or '-'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
