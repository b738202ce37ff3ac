"""`olmoctl doctor`'s job/launcher contract: what each rank of the preflight job
(olmoctl.train.burnin.preflight) reports, one JSON file per rank in RUN_DIR/preflight/, and what
the launcher (olmoctl.core.doctor.job) reads back. Check names are fixed here so both sides and
the tests say the same thing."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from olmoctl.schemas.base import Schema
from olmoctl.schemas.bounds import Int

PREFLIGHT_DIR = "preflight"

# The checks, in the order they run and are shown (env checks are `env NAME`, one per
# variable the profile sets).
IMPORTS = "import"  # torch, olmoctl and submitit (the real run's job side) import
GPUS = "gpus"  # devices per node == the profile's gpus_per_node (skipped on CPU profiles)
PLUGIN = "network_plugin"  # the profile's NCCL/RCCL net plugin loads and is on the path
ENV = "env"  # prefix: `env NCCL_SOCKET_IFNAME` (the value the profile set reached the job)
IFNAME = "socket_ifname"  # NCCL_/GLOO_SOCKET_IFNAME match an interface of the node
RUN_DIR = "run_dir"  # the run directory takes a file (and how much room it has)
DATA = "data"  # the recipe's data files are there and readable
DISTRIBUTED = "distributed"  # the process group starts across the nodes; an all-reduce
# NCCL's network (IB, an OFI plugin, or Socket) and NICs, from its debug output during that
# all-reduce; Socket over several nodes fails (the run would crawl)
TRANSPORT = "transport"


def rank_file(rank: int) -> str:
    """One rank's report, relative to the run directory."""
    return f"{PREFLIGHT_DIR}/rank-{rank:05d}.json"


def nccl_log_file(rank: int) -> str:
    """One rank's NCCL debug output (NCCL_DEBUG_FILE), relative to the run directory."""
    return f"{PREFLIGHT_DIR}/nccl-rank-{rank:05d}.log"


class Check(Schema):
    model_config = ConfigDict(extra="ignore")  # a newer job's extra fields are not errors

    name: str
    ok: bool
    value: str = ""  # what was measured (a version, a count, a path, a time)
    detail: str = ""  # why it failed, or why it was skipped
    skipped: bool = False  # not applicable to this profile (counts as passed)


class RankReport(Schema):
    model_config = ConfigDict(extra="ignore")

    rank: Int = Field(ge=0)
    world_size: Int = Field(ge=1)
    node: str
    local_rank: Int = Field(default=0, ge=0)
    device: str = ""  # the GPU this rank uses (its UUID), "" on CPU
    checks: list[Check] = Field(default_factory=list)
    # False while the distributed check is still to come (written before it, so that a
    # collective that hangs still leaves the local checks behind).
    done: bool = False
