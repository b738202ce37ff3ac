"""Burn-in settings (a cluster profile's `burnin:`) and the verdict file the job's burn-in
step leaves for the batch script (olmoctl.train.burnin writes it, the script reads it).

Every check's threshold is relative to the allocation's median (a node below `min_ratio` x
the median fails) and to an absolute floor from the profile (0 = none); a check that does not
finish within `check_timeout_s` fails, so a hung node is found rather than waited on.
"""

from __future__ import annotations

from pydantic import Field

from olmoctl.schemas.base import Schema
from olmoctl.schemas.bounds import DAY_S, Float, Int
from olmoctl.schemas.shellsafe import is_host

MB_MAX = 1 << 20  # 1 TiB in MiB: far above any buffer a check should use


class BurninConfig(Schema):
    enabled: bool = True
    # `launch --spare-nodes` when not given: extra nodes allocated, burned in, left idle.
    spare_nodes: Int = Field(default=0, ge=0, le=1_000_000)
    # With spares, a lost node does not end the job: the batch script keeps the allocation
    # (--no-kill) and starts training again on the survivors, at most this many times per
    # job (0: off, a lost node ends the job as without spares), after a pause of
    # restart_backoff_s (docs/recovery.md).
    restarts_in_allocation: Int = Field(default=3, ge=0, le=1000)
    restart_backoff_s: Int = Field(default=2, ge=0, le=3600)
    # Every task must have started and reached the first check by then (import, container).
    start_timeout_s: Float = Field(default=180.0, gt=0, le=DAY_S)
    # Each check's limit (one local check, the all-reduce, one round of neighbour pairs).
    check_timeout_s: Float = Field(default=60.0, gt=0, le=DAY_S)
    # How long each throughput check measures (GEMM, memory); the rest is fixed work.
    measure_s: Float = Field(default=1.0, gt=0, le=3600)
    # A node fails a check below min_ratio x the allocation's median for that check.
    min_ratio: Float = Field(default=0.5, gt=0, le=1)
    # The same for the filesystem check: a shared filesystem's speed varies far more from
    # node to node and moment to moment than a device's, so only a far outlier is bad.
    fs_min_ratio: Float = Field(default=0.1, gt=0, le=1)
    # Sizes; None: the device's default (GPU: GEMM 8192, 2 GiB memory, 256 MiB all-reduce;
    # CPU: GEMM 256, 64 MiB memory, 4 MiB all-reduce).
    gemm_size: Int | None = Field(default=None, gt=0, le=65536)
    memory_mb: Int | None = Field(default=None, gt=0, le=MB_MAX)
    allreduce_mb: Float | None = Field(default=None, gt=0, le=MB_MAX)
    fs_mb: Int = Field(default=16, gt=0, le=MB_MAX)
    # Absolute floors (0 = none): TFLOP/s of one device's GEMM, GB/s of a memory write+read,
    # MB/s of a file write+read in the run directory, all-reduce bus GB/s, neighbour GB/s.
    min_gemm_tflops: Float = Field(default=0.0, ge=0, le=1e6)
    min_memory_gbps: Float = Field(default=0.0, ge=0, le=1e6)
    min_fs_mbps: Float = Field(default=0.0, ge=0, le=1e9)
    min_busbw_gbps: Float = Field(default=0.0, ge=0, le=1e6)
    min_pair_gbps: Float = Field(default=0.0, ge=0, le=1e6)

    def budget_s(self) -> float:
        """The longest a burn-in can take: start, the local checks, the all-reduce and three
        rounds of neighbour pairs, each at its limit (the batch script's step limit)."""
        return self.start_timeout_s + 7 * self.check_timeout_s


# ------------------------------------------------------------------ the verdict file
# RUN_DIR/burnin/JOB-RESTART.verdict, `key=value` lines the batch script reads in bash:
#   action=train|requeue|fail   train on `use`; requeue without `exclude`; give up
#   use=node1,node3             the nodes to train on (as many as the run asked for)
#   exclude=node2               every node burn-in found bad in this job (all incarnations)
# Node names are Slurm host names (shellsafe.HOST_RE): the job checks them before writing
# and the script checks them again before use.
ACTIONS = ("train", "requeue", "fail")


def format_verdict(action: str, use: list[str], exclude: list[str]) -> str:
    if action not in ACTIONS:
        raise ValueError(f"burn-in action {action!r} is not one of {', '.join(ACTIONS)}")
    for node in [*use, *exclude]:
        if not is_host(node):
            raise ValueError(f"burn-in: {node!r} is not a Slurm host name")
    return f"action={action}\nuse={','.join(use)}\nexclude={','.join(exclude)}\n"


def parse_verdict(text: str) -> tuple[str, list[str], list[str]] | None:
    """(action, use, exclude) of a verdict file, or None when any part is not valid."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or key not in ("action", "use", "exclude"):
            return None
        fields[key] = value
    action = fields.get("action")
    use = [n for n in fields.get("use", "").split(",") if n]
    exclude = [n for n in fields.get("exclude", "").split(",") if n]
    if action not in ACTIONS or not all(is_host(n) for n in [*use, *exclude]):
        return None
    return action, use, exclude
