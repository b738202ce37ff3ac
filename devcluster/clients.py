"""Talking to the running cluster through its own clients (the $DIR/bin wrappers): the
environment a client needs, running one, and the node states every wait is built on."""

from __future__ import annotations

import os
import re
import subprocess

from .proc import run
from .settings import BIN, DIR, SLURM_CONF


def client_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env["SLURM_CONF"] = str(SLURM_CONF)
    env["OLMOCTL_DEV_CLUSTER_DIR"] = str(DIR)
    return env


def slurm(args: list[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a Slurm client through our wrapper (inside the head namespace)."""
    return run([str(BIN / args[0]), *args[1:]], check=check, env=client_env(), timeout=timeout)


def ctld_up() -> bool:
    p = slurm(["scontrol", "ping"], check=False, timeout=15)
    return p.returncode == 0 and "is UP" in p.stdout


def node_states() -> dict[str, str]:
    """node -> long state as scontrol prints it, e.g. IDLE, DOWN+NOT_RESPONDING, IDLE+DRAIN."""
    p = slurm(["scontrol", "-o", "show", "node"], check=False, timeout=15)
    out = {}
    for line in p.stdout.splitlines():
        m = re.search(r"NodeName=(\S+)", line)
        s = re.search(r"\bState=(\S+)", line)
        if m and s:
            out[m.group(1)] = s.group(1)
    return out


def node_ok(state: str) -> bool:
    """Responding and schedulable (idle, mixed, allocated...)."""
    bad = ("DOWN", "NOT_RESPONDING", "DRAIN", "FAIL", "UNKNOWN", "INVALID", "FUTURE")
    return bool(state) and not any(b in state for b in bad)
