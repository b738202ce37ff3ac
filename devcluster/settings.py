"""Where the cluster lives and what it is called: one place for every name, address, port and
path, all derived from `OLMOCTL_DEV_CLUSTER_DIR` (read once, at import), so two folders give
two clusters that never collide."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DEFAULT_DIR = "/tmp/olmoctl-dev-cluster"
DIR = Path(os.path.abspath(os.environ.get("OLMOCTL_DEV_CLUSTER_DIR") or DEFAULT_DIR))
# Namespace names are global on the machine: derive them from the folder so that two
# clusters with different folders never collide. The default folder gets `odc-*`.
PREFIX = (
    "odc" if str(DIR) == DEFAULT_DIR else ("odc" + hashlib.sha1(str(DIR).encode()).hexdigest()[:6])
)
HEAD_NS = f"{PREFIX}-head"
SUBNET = "10.77.0"  # exists only inside our namespaces
HEAD_ADDR = f"{SUBNET}.1"
HEAD_HOST = "head"
CLUSTER_NAME = "olmoctl-dev"
PARTITION = "dev"
MYSQL_PORT = 3307  # inside the head namespace, on its loopback only
DBD_PORT = 6819
CTLD_PORT = 6817
SLURMD_PORT = 6818
CPUS_PER_NODE = 8
GPUS_PER_NODE = 8
MAX_NODES = 200

ETC, RUN, LOG, STATE, BIN, DEV = (DIR / d for d in ("etc", "run", "log", "state", "bin", "dev"))
SLURM_CONF = ETC / "slurm.conf"
MUNGE_SOCK = RUN / "munge" / "munge.socket.2"
MYSQL_SOCK = RUN / "mysqld.sock"
MYSQL_DATA = STATE / "mysql"
HOSTS = ETC / "hosts"
RECORD = DIR / "cluster.json"
LOCK = DIR / ".lock"

CLIENTS = [
    "sbatch",
    "srun",
    "salloc",
    "sacct",
    "squeue",
    "scancel",
    "scontrol",
    "sinfo",
    "sacctmgr",
    "sstat",
    "sattach",
    "sreport",
    "sprio",
    "sshare",
    "sdiag",
    "sbcast",
]
# One list of Debian packages shared with scripts/setup: PACKAGE [FILE...] a line.
PACKAGES_FILE = Path(__file__).resolve().parents[1] / "scripts" / "debian-packages.txt"
# The environment every daemon starts with (nothing inherited from the caller).
SYS_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "SLURM_CONF": str(SLURM_CONF),
}


def node_names(n: int) -> list[str]:
    return [f"node{i}" for i in range(1, n + 1)]


def node_addr(node: str) -> str:
    return f"{SUBNET}.{10 + int(node[4:])}"


def ns_of(node: str) -> str:
    return f"{PREFIX}-{node}"
