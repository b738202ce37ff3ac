"""The cluster's network, all of it inside namespaces it creates: a head namespace with a
bridge, one namespace per node joined to it by a veth pair (`v-NODE` on the head's side,
`eth0` in the node). A node's link is what partition-node cuts."""

from __future__ import annotations

import os
import re

from .proc import die, run, save_record
from .settings import DIR, HEAD_ADDR, HEAD_NS, node_addr, ns_of


def make_network(rec: dict, nodes: list[str]) -> None:
    for ns in [HEAD_NS, *map(ns_of, nodes)]:
        if os.path.exists(f"/run/netns/{ns}"):
            die(
                f"network namespace {ns} exists but this cluster ({DIR}) has no record of it; "
                f"remove it (`ip netns pids {ns}`, `ip netns del {ns}`) or set "
                "OLMOCTL_DEV_CLUSTER_DIR to another folder"
            )
    ip = lambda *a: run(["ip", *a])  # noqa: E731
    ip("netns", "add", HEAD_NS)
    rec["netns"].append(HEAD_NS)
    save_record(rec)
    h = ["-n", HEAD_NS]
    ip(*h, "link", "set", "lo", "up")
    ip(*h, "link", "add", "br0", "type", "bridge")
    ip(*h, "addr", "add", f"{HEAD_ADDR}/24", "dev", "br0")
    ip(*h, "link", "set", "br0", "up")
    for node in nodes:
        ns = ns_of(node)
        ip("netns", "add", ns)
        rec["netns"].append(ns)
        save_record(rec)
        # created directly inside the namespaces: nothing appears in the host's own
        ip(
            "link",
            "add",
            f"v-{node}",
            "netns",
            HEAD_NS,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        )
        ip(*h, "link", "set", f"v-{node}", "master", "br0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "addr", "add", f"{node_addr(node)}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")


def link_up(node: str) -> bool:
    p = run(["ip", "-n", HEAD_NS, "-o", "link", "show", f"v-{node}"], check=False)
    m = re.search(r"<([^>]*)>", p.stdout)
    return bool(m) and "UP" in m.group(1).split(",")


def set_link(node: str, up: bool) -> None:
    run(["ip", "-n", HEAD_NS, "link", "set", f"v-{node}", "up" if up else "down"])


def ns_tcp_ok(ns: str, host: str, port: int) -> bool:
    p = run(
        [
            "/usr/bin/nsenter",
            f"--net=/run/netns/{ns}",
            "--",
            "/bin/bash",
            "-c",
            f"exec 3<>/dev/tcp/{host}/{port}",
        ],
        check=False,
    )
    return p.returncode == 0
