"""dev-cluster: a real Slurm cluster on this one machine (Debian 12, run as root).

    scripts/dev-cluster up [--nodes N]      start (default 3 nodes); says so if already running
    scripts/dev-cluster down                stop everything it started, remove its namespaces
    scripts/dev-cluster status              daemons, namespaces, node states (exit 1 if down)
    scripts/dev-cluster env                 `export` lines for the Slurm clients (eval them)
    scripts/dev-cluster exec CMD...         run CMD with that environment
    scripts/dev-cluster kill-node NODE      crash a node: SIGKILL its slurmd and every task on it
    scripts/dev-cluster revive-node NODE    start its slurmd again (ReturnToService=2 -> idle)
    scripts/dev-cluster partition-node NODE cut its network link
    scripts/dev-cluster heal-node NODE      restore its network link
    scripts/dev-cluster restart-controller  stop slurmctld (state saved) and start it again
    scripts/dev-cluster drain NODE          scontrol update state=DRAIN
    scripts/dev-cluster undrain NODE        scontrol update state=RESUME
    scripts/dev-cluster slow-node NODE --cpu N%  cap its processes (slurmd, the tasks it starts)
                                            at N% of one CPU (cgroup CPU quota); 100% lifts it
    scripts/dev-cluster unslow-node NODE    lift slow-node's quota (as slow-node --cpu 100%)
    scripts/dev-cluster fail-node-check NODE --path DIR [--hide]   DIR read-only (or empty)
    scripts/dev-cluster unfail-node-check NODE  DIR writable on NODE again
    scripts/dev-cluster restore             revive, heal, resume and un-slow every node, wait

The command line: the parser, the two commands that only hand out the client environment
(env, exec), and main(), which scripts/dev-cluster calls. The commands themselves live in
lifecycle.py (up, down, status) and faults.py (the rest); the layout is in __init__.py.
"""

from __future__ import annotations

import argparse
import os
import shlex

from .clients import client_env
from .faults import (
    cmd_drain,
    cmd_fail_node_check,
    cmd_heal_node,
    cmd_kill_node,
    cmd_partition_node,
    cmd_restart_controller,
    cmd_restore,
    cmd_revive_node,
    cmd_slow_node,
    cmd_undrain,
    cmd_unfail_node_check,
    cmd_unslow_node,
)
from .lifecycle import cmd_down, cmd_status, cmd_up
from .proc import die
from .settings import BIN, DIR, SLURM_CONF


def cmd_env(args) -> int:
    print(f"export OLMOCTL_DEV_CLUSTER_DIR={shlex.quote(str(DIR))}")
    print(f"export SLURM_CONF={shlex.quote(str(SLURM_CONF))}")
    print(f'export PATH={shlex.quote(str(BIN))}:"$PATH"')
    return 0


def cmd_exec(args) -> int:
    if not args.cmd:
        die("usage: dev-cluster exec CMD [ARGS...]")
    cmd = args.cmd[1:] if args.cmd[0] == "--" else args.cmd
    env = client_env()
    try:
        os.execvpe(cmd[0], cmd, env)
    except FileNotFoundError:
        die(f"{cmd[0]}: command not found", 127)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="dev-cluster",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start the cluster (idempotent)")
    p.add_argument("--nodes", type=int, default=3)
    p.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop everything this script started").set_defaults(fn=cmd_down)
    sub.add_parser("status", help="daemons and nodes").set_defaults(fn=cmd_status)
    sub.add_parser("env", help="export lines for the Slurm clients").set_defaults(fn=cmd_env)
    p = sub.add_parser("exec", help="run CMD with the Slurm clients on PATH")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_exec)
    for name, fn, hlp in (
        ("unslow-node", cmd_unslow_node, "lift a node's CPU quota"),
        ("unfail-node-check", cmd_unfail_node_check, "undo fail-node-check"),
        ("kill-node", cmd_kill_node, "crash a node"),
        ("revive-node", cmd_revive_node, "restart a crashed node's slurmd"),
        ("partition-node", cmd_partition_node, "cut a node's network"),
        ("heal-node", cmd_heal_node, "restore a node's network"),
        ("undrain", cmd_undrain, "return a drained node to service"),
    ):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("node")
        p.set_defaults(fn=fn)
    p = sub.add_parser("fail-node-check", help="make DIR read-only as NODE sees it")
    p.add_argument("node")
    p.add_argument("--path", required=True, help="a directory, e.g. the runs root")
    p.add_argument(
        "--hide",
        action="store_true",
        help="an empty read-only folder in its place (a node without the filesystem)",
    )
    p.set_defaults(fn=cmd_fail_node_check)
    p = sub.add_parser("drain", help="drain a node")
    p.add_argument("node")
    p.add_argument("--reason", default="dev-cluster drain")
    p.set_defaults(fn=cmd_drain)
    p = sub.add_parser("slow-node", help="cap a node's CPU (cgroup quota)")
    p.add_argument("node")
    p.add_argument("--cpu", required=True, help="percent of one CPU, e.g. 10%%; 100%% lifts it")
    p.set_defaults(fn=cmd_slow_node)
    sub.add_parser("restart-controller", help="restart slurmctld, keeping its jobs").set_defaults(
        fn=cmd_restart_controller
    )
    sub.add_parser("restore", help="revive, heal and resume every node").set_defaults(
        fn=cmd_restore
    )
    args = ap.parse_args(argv)
    return args.fn(args)
