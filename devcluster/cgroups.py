"""The CPU quota behind slow-node: a cgroup per node holding everything in the node's network
namespace (slurmd first: what it starts later inherits the cgroup). cgroup v2 (cpu.max) or
v1's cpu controller (cfs_quota_us / cfs_period_us)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from .settings import PREFIX

CG_V2 = Path("/sys/fs/cgroup")
CG_V1 = Path("/sys/fs/cgroup/cpu")
CG_PERIOD_US = 100_000


def cgroup_root() -> Path:
    return CG_V2 if (CG_V2 / "cgroup.controllers").exists() else CG_V1


def slow_cgroup(node: str) -> Path:
    return cgroup_root() / f"{PREFIX}-slow-{node}"


def set_quota(cg: Path, percent: float) -> None:
    quota = max(1000, int(CG_PERIOD_US * percent / 100))
    if cgroup_root() == CG_V2:
        (CG_V2 / "cgroup.subtree_control").write_text("+cpu")
        (cg / "cpu.max").write_text(f"{quota} {CG_PERIOD_US}")
    else:
        (cg / "cpu.cfs_period_us").write_text(str(CG_PERIOD_US))
        (cg / "cpu.cfs_quota_us").write_text(str(quota))


def move_pids(pids: list[int], to: Path) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):  # exited meanwhile
            (to / "cgroup.procs").write_text(str(pid))


def unslow(node: str) -> bool:
    cg = slow_cgroup(node)
    if not cg.is_dir():
        return False
    for _ in range(50):  # a task may fork while we move them out
        pids = [int(x) for x in (cg / "cgroup.procs").read_text().split()]
        if not pids:
            break
        move_pids(pids, cgroup_root())
    cg.rmdir()
    return True
