"""The cluster's life: `up` (a fresh cluster, or the running one with any dead daemon
restarted), `down` and the teardown behind it (only what we recorded, and whatever runs in our
namespaces), `status`, and the "is it running" check every fault command starts with."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import time

from .cgroups import slow_cgroup
from .clients import slurm
from .configs import write_configs
from .daemons import daemon_order, start_all
from .network import link_up, make_network
from .packages import ensure_packages
from .proc import alive, die, kill_ns, load_record, locked, run, save_record, say, stop_pid
from .settings import (
    BIN,
    CLUSTER_NAME,
    DIR,
    HEAD_ADDR,
    HEAD_HOST,
    HEAD_NS,
    LOG,
    MAX_NODES,
    MUNGE_SOCK,
    MYSQL_DATA,
    PARTITION,
    PREFIX,
    RUN,
    STATE,
    node_addr,
    node_names,
    ns_of,
)


def running_record() -> dict | None:
    rec = load_record()
    if (
        rec
        and rec.get("up")
        and alive(rec["pids"].get("slurmctld"))
        and os.path.exists(f"/run/netns/{HEAD_NS}")
    ):
        return rec
    return None


def cmd_up(args) -> int:
    if os.geteuid() != 0:
        die("must run as root (network namespaces, daemons)")
    n = args.nodes
    if not 1 <= n <= MAX_NODES:
        die(f"--nodes must be 1..{MAX_NODES}")
    if len(str(MUNGE_SOCK)) > 100:
        die(f"{DIR} is too long a path: munge's socket path must stay under 108 bytes")
    t0 = time.monotonic()
    ensure_packages()
    with locked():
        rec = load_record()
        if rec and rec.get("up") and os.path.exists(f"/run/netns/{HEAD_NS}"):
            if rec["nodes"] != n:
                die(
                    f"already running with {rec['nodes']} nodes (asked for {n}); "
                    "run `scripts/dev-cluster down` first",
                    2,
                )
            dead = [name for name in daemon_order(rec["nodes"]) if not alive(rec["pids"].get(name))]
            if not dead:
                say(f"already running ({n} nodes, {DIR})")
                return 0
            say(f"running, but restarting {', '.join(dead)}")
            start_all(rec, dead)
            say(f"up ({n} nodes) in {time.monotonic() - t0:.1f}s")
            return 0
        if rec:
            teardown(rec, quiet=True)
        fresh_up(n)
    say(
        f"up: {n} nodes in {time.monotonic() - t0:.1f}s; partition {PARTITION}, "
        f"nodes {', '.join(node_names(n))}"
    )
    say(f'clients: eval "$({sys.argv[0]} env)"   or   {sys.argv[0]} exec sinfo')
    return 0


def fresh_up(n: int) -> None:
    # a new cluster every time: fresh controller state and accounting database
    # (job ids restart at 1; keeping an old database would mix two job 1s in sacct)
    DIR.mkdir(parents=True, exist_ok=True)
    for d in (STATE, RUN, BIN):
        shutil.rmtree(d, ignore_errors=True)
    if LOG.exists():
        shutil.rmtree(DIR / "log.prev", ignore_errors=True)
        LOG.rename(DIR / "log.prev")
    db_pass = secrets.token_hex(12)
    write_configs(n, db_pass)
    rec = {
        "up": False,
        "nodes": n,
        "prefix": PREFIX,
        "dir": str(DIR),
        "pids": {},
        "netns": [],
        "started": time.time(),
    }
    save_record(rec)
    ok = False
    try:
        make_network(rec, node_names(n))
        p = run(
            [
                "/usr/bin/mariadb-install-db",
                "--no-defaults",
                f"--datadir={MYSQL_DATA}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=False,
            timeout=120,
        )
        if p.returncode != 0:
            print(p.stdout[-3000:] + p.stderr[-3000:], file=sys.stderr)
            die("mariadb-install-db failed")
        rec["db_pass"] = db_pass
        start_all(rec, daemon_order(n), fresh=True)
        rec["up"] = True
        save_record(rec)
        ok = True
    finally:
        if not ok:
            say(f"start-up failed: stopping what was started (logs stay in {LOG})")
            teardown(load_record() or rec, quiet=True)


def teardown(rec: dict, quiet: bool = False) -> None:
    order = daemon_order(rec.get("nodes", 0))
    # slurmds first (their jobs die with the namespace below), the controller saves its
    # state on SIGTERM, MariaDB and munged last
    for name in reversed(order):
        entry = rec.get("pids", {}).get(name)
        if alive(entry) and not quiet:
            say(f"stopping {name} (pid {entry[0]})")
        stop_pid(entry, timeout=15 if name in ("mariadb", "slurmctld") else 5)
    for entry in rec.get("pids", {}).values():  # anything recorded but unnamed above
        stop_pid(entry)
    # job tasks, slurmstepd, srun clients...: everything left inside our namespaces
    for ns in rec.get("netns", []):
        if os.path.exists(f"/run/netns/{ns}"):
            kill_ns(ns)
    for ns in reversed(rec.get("netns", [])):
        if os.path.exists(f"/run/netns/{ns}"):
            p = run(["ip", "netns", "del", ns], check=False)
            if p.returncode != 0:
                say(f"warning: could not delete namespace {ns}: {p.stderr.strip()}")
            elif not quiet:
                say(f"removed network namespace {ns}")
    for node in node_names(rec.get("nodes", 0)):
        with contextlib.suppress(OSError):  # emptied with its namespace above
            slow_cgroup(node).rmdir()
    rec.update(up=False, pids={}, netns=[], ro_mounts={})
    save_record(rec)


def cmd_down(args) -> int:
    with locked():
        rec = load_record()
        if not rec:
            say(f"nothing recorded in {DIR}: nothing to stop")
            return 0
        teardown(rec)
    say("down")
    return 0


def cmd_status(args) -> int:
    rec = load_record()
    if not rec or not rec.get("up"):
        say(f"not running ({DIR})")
        return 1
    print(f"dir        {DIR}")
    print(f"cluster    {CLUSTER_NAME}, partition {PARTITION}, {rec['nodes']} nodes")
    print(f"head       {HEAD_HOST} {HEAD_ADDR} netns {HEAD_NS}")
    for name in daemon_order(rec["nodes"]):
        entry = rec["pids"].get(name)
        st = "running" if alive(entry) else "STOPPED"
        print(f"  {name:<14} {st:<8} pid {entry[0] if entry else '-'}")
    for node in node_names(rec["nodes"]):
        link = "up" if link_up(node) else "CUT"
        print(f"{node:<10} {node_addr(node):<12} netns {ns_of(node):<12} link {link}")
    if alive(rec["pids"].get("slurmctld")):
        print(slurm(["sinfo", "-N", "-o", "%N %P %T %c %G %E"], check=False).stdout, end="")
    ok = alive(rec["pids"].get("slurmctld"))
    return 0 if ok else 1


def need_running(node: str | None = None) -> dict:
    rec = running_record()
    if not rec:
        die(f"the dev cluster in {DIR} is not running (scripts/dev-cluster up)")
    if node is not None and node not in node_names(rec["nodes"]):
        die(f"no node {node!r} (nodes: {', '.join(node_names(rec['nodes']))})")
    return rec
