"""Fault handles: ways to break one node (or the controller) the way real clusters break, each
with its undo, and `restore` that undoes them all. They change the cluster under the lock and
return once Slurm shows the change where that matters (heal-node, restart-controller,
restore)."""

from __future__ import annotations

import os
import re
import time

from .cgroups import move_pids, set_quota, slow_cgroup, unslow
from .clients import node_ok, node_states, slurm
from .daemons import daemon_order, start_all
from .lifecycle import need_running
from .network import link_up, set_link
from .proc import alive, die, kill_ns, locked, ns_pids, run, save_record, say, stop_pid, wait_until
from .settings import node_names, ns_of

# ---------- crash: the node's namespace killed; revive-node starts its slurmd again


def cmd_kill_node(args) -> int:
    with locked():
        rec = need_running(args.node)
        kill_ns(ns_of(args.node))
        rec["pids"].pop(f"slurmd-{args.node}", None)
        save_record(rec)
    say(f"{args.node} crashed: slurmd and all its tasks killed (SIGKILL)")
    return 0


def cmd_revive_node(args) -> int:
    with locked():
        rec = need_running(args.node)
        name = f"slurmd-{args.node}"
        if alive(rec["pids"].get(name)):
            say(f"{args.node}: slurmd already running")
        else:
            start_all(rec, [name])
    say(f"{args.node} revived: {node_states().get(args.node)}")
    return 0


# ---------- network partition: the node's link down; heal-node brings it up


def cmd_partition_node(args) -> int:
    with locked():
        need_running(args.node)
        set_link(args.node, False)
    say(f"{args.node} cut off the network (its processes keep running)")
    return 0


def cmd_heal_node(args) -> int:
    with locked():
        need_running(args.node)
        set_link(args.node, True)
        node = args.node
        # the controller pings a DOWN node and puts it back (ReturnToService=2) once it answers
        wait_until(
            lambda: node_ok(node_states().get(node, "")) or "DRAIN" in node_states().get(node, ""),
            60,
            f"{node} to answer again",
            interval=0.3,
        )
    say(f"{args.node} healed: {node_states().get(args.node)}")
    return 0


# ---------- the controller restarted, its state kept


def cmd_restart_controller(args) -> int:
    with locked():
        rec = need_running()
        t0 = time.monotonic()
        stop_pid(rec["pids"].get("slurmctld"), timeout=30)
        start_all(rec, ["slurmctld"])
        # A restarted controller keeps jobs and DOWN/DRAIN states; the other nodes read
        # UNKNOWN until their next ping (~5 s). Return once every live, connected node has
        # registered again, so the caller finds the cluster as it left it.
        live = [
            x
            for x in node_names(rec["nodes"])
            if alive(rec["pids"].get(f"slurmd-{x}")) and link_up(x)
        ]
        wait_until(
            lambda: all("UNKNOWN" not in node_states().get(x, "UNKNOWN") for x in live),
            30,
            f"nodes {', '.join(live)} to register with the new controller",
            interval=0.3,
        )
    say(f"slurmctld restarted in {time.monotonic() - t0:.1f}s (jobs recovered from its state)")
    return 0


# ---------- drain / undrain: Slurm's own node state


def cmd_drain(args) -> int:
    need_running(args.node)
    slurm(["scontrol", "update", f"NodeName={args.node}", "State=DRAIN", f"Reason={args.reason}"])
    say(f"{args.node} draining: {node_states().get(args.node)}")
    return 0


def cmd_undrain(args) -> int:
    need_running(args.node)
    slurm(["scontrol", "update", f"NodeName={args.node}", "State=RESUME"])
    say(f"{args.node}: {node_states().get(args.node)}")
    return 0


# ---------- slow node: a CPU quota (cgroups.py)


def cmd_slow_node(args) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)%?", args.cpu)
    if not m or not 0 < float(m.group(1)) <= 100:
        die(f"--cpu {args.cpu!r}: expected a percentage of one CPU, 0 < N <= 100 (e.g. 10%)", 2)
    percent = float(m.group(1))
    with locked():
        need_running(args.node)
        if percent == 100:
            unslow(args.node)
            say(f"{args.node}: CPU quota lifted")
            return 0
        cg = slow_cgroup(args.node)
        cg.mkdir(exist_ok=True)
        set_quota(cg, percent)
        move_pids(ns_pids(ns_of(args.node)), cg)
    say(f"{args.node} slowed: its processes get {percent:g}% of one CPU")
    return 0


def cmd_unslow_node(args) -> int:
    with locked():
        need_running(args.node)
        done = unslow(args.node)
    say(f"{args.node}: " + ("CPU quota lifted" if done else "was not slowed"))
    return 0


# ---------- fail-node-check: a read-only mount as one node sees it
# A node whose checks fail for real: a read-only bind mount in the node's own mount
# namespace (its slurmd was started with `unshare --mount`, so the job steps it starts share
# it), so files there cannot be written from that node alone. Undone by unfail-node-check,
# restore, or a restarted slurmd (a fresh namespace).


def slurmd_pid(rec: dict, node: str) -> int:
    entry = rec["pids"].get(f"slurmd-{node}")
    if not alive(entry):
        die(f"{node}: slurmd is not running (scripts/dev-cluster revive-node {node})")
    return entry[0]


def in_node_mounts(rec: dict, node: str, argv: list[str], check: bool = True):
    pid = slurmd_pid(rec, node)
    return run(["/usr/bin/nsenter", f"--mount=/proc/{pid}/ns/mnt", "--", *argv], check=check)


def cmd_fail_node_check(args) -> int:
    path = os.path.realpath(args.path)
    if not os.path.isdir(path):
        die(f"--path {args.path!r} is not a directory", 2)
    with locked():
        rec = need_running(args.node)
        if getattr(args, "hide", False):  # an empty, read-only folder over it
            in_node_mounts(rec, args.node, ["mount", "-t", "tmpfs", "-o", "ro,size=1m",
                                            "olmoctl-hidden", path])  # fmt: skip
        else:
            in_node_mounts(rec, args.node, ["mount", "--bind", path, path])
            in_node_mounts(rec, args.node, ["mount", "-o", "remount,bind,ro", path, path])
        rec.setdefault("ro_mounts", {}).setdefault(args.node, []).append(path)
        save_record(rec)
    how = "hidden (an empty folder)" if getattr(args, "hide", False) else "read-only"
    say(f"{args.node}: {path} is {how} as {args.node} sees it")
    return 0


def unfail(rec: dict, node: str) -> list[str]:
    paths = rec.get("ro_mounts", {}).pop(node, [])
    if alive(rec["pids"].get(f"slurmd-{node}")):  # else its namespace is gone already
        for path in reversed(paths):
            in_node_mounts(rec, node, ["umount", path], check=False)
    return paths


def cmd_unfail_node_check(args) -> int:
    with locked():
        rec = need_running(args.node)
        paths = unfail(rec, args.node)
        save_record(rec)
    say(f"{args.node}: " + (f"{', '.join(paths)} writable again" if paths else "nothing to undo"))
    return 0


# ---------- back to full health


def cmd_restore(args) -> int:
    """Back to full health: every slurmd running, every link up, no node down or drained,
    no node slowed."""
    with locked():
        rec = need_running()
        nodes = node_names(rec["nodes"])
        for node in nodes:
            unslow(node)
        for node in nodes:
            set_link(node, True)
        dead = [f"slurmd-{x}" for x in nodes if not alive(rec["pids"].get(f"slurmd-{x}"))]
        head_dead = [x for x in daemon_order(0) if not alive(rec["pids"].get(x))]
        for node in nodes:
            unfail(rec, node)
        save_record(rec)
        if head_dead or dead:
            start_all(rec, head_dead + dead)

        def healthy():
            states = node_states()
            for node in nodes:
                st = states.get(node, "")
                if not node_ok(st) and "NOT_RESPONDING" not in st:
                    # down or drained while answering: put it back
                    slurm(["scontrol", "update", f"NodeName={node}", "State=RESUME"], check=False)
            return all(node_ok(states.get(x, "")) for x in nodes)

        wait_until(healthy, 60, "every node to be back in service", interval=0.3)
    say("restored: " + ", ".join(f"{k}={v}" for k, v in sorted(node_states().items())))
    return 0
