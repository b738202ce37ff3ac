"""Where am I? (srun, torchrun, submitit or one plain process) and torch.distributed setup.

- torchrun / submitit (TorchDistributedEnvironment.export): RANK, WORLD_SIZE, LOCAL_RANK,
  LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
- srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_JOB_NODELIST; MASTER_ADDR and
  MASTER_PORT from the environment when set, else the first host of the node list
  (expanded here, no Slurm client) and olmoctl.schemas.contract.master_port_for(job id).
- otherwise one process (rank 0 of 1).
gloo on CPU, nccl on GPU (ROCm's RCCL answers to nccl as well).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from olmoctl.schemas.contract import LOCAL_MASTER_PORT, master_port_for


@dataclass(frozen=True)
class DistEnv:
    launcher: str  # torchrun | slurm | single
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int
    job_id: str
    attempt: int


def _split_top(text: str) -> list[str]:
    """Split a host list at the commas outside brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p]


def _expand_one(pattern: str) -> list[str]:
    """One host pattern, any number of bracket groups: rack[1-2]-n[01,03] -> 4 names."""
    m = re.search(r"\[([^\]]*)\]", pattern)
    if not m:
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end() :]
    out: list[str] = []
    for part in m.group(1).split(","):
        lo, _, hi = part.partition("-")
        numbers = [lo] if not hi else [f"{i:0{len(lo)}d}" for i in range(int(lo), int(hi) + 1)]
        for n in numbers:
            out.extend(_expand_one(head + n + tail))
    return out


def expand_nodelist(nodelist: str) -> list[str]:
    """Slurm host list -> hostnames, as `scontrol show hostnames` prints them, computed here:
    the job side calls no Slurm client (it may run in a container that has none)."""
    return [host for pattern in _split_top(nodelist) for host in _expand_one(pattern)]


def _incarnation(env: Mapping[str, str]) -> int:
    """This incarnation of the job: Slurm's requeues plus the batch script's in-allocation
    restarts (OLMOCTL_INCARNATION, which counts both), one per record in Slurm's accounting."""
    for key in ("OLMOCTL_INCARNATION", "SLURM_RESTART_COUNT"):
        value = env.get(key, "")
        if value.isascii() and value.isdigit() and len(value) < 10:
            return int(value)
    return 0


def detect(env: Mapping[str, str] | None = None) -> DistEnv:
    env = os.environ if env is None else env
    job_id = (
        env.get("OLMOCTL_JOB_ID")  # set by submit_entry from submitit's job environment
        or env.get("SLURM_JOB_ID")
        or env.get("TORCHELASTIC_RUN_ID")
        or f"local-{os.getpid()}"
    )
    attempt = _incarnation(env)
    if "RANK" in env and "WORLD_SIZE" in env:
        world = int(env["WORLD_SIZE"])
        return DistEnv(
            launcher="torchrun",
            rank=int(env["RANK"]),
            world_size=world,
            local_rank=int(env.get("LOCAL_RANK", "0")),
            local_world_size=int(env.get("LOCAL_WORLD_SIZE", str(world))),
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=int(env.get("MASTER_PORT", str(LOCAL_MASTER_PORT))),
            job_id=job_id,
            attempt=attempt,
        )
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        world = int(env["SLURM_NTASKS"])
        nodes = int(env.get("SLURM_STEP_NUM_NODES") or env.get("SLURM_NNODES") or "1")
        addr = env.get("MASTER_ADDR")
        if not addr:
            nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "")
            addr = (expand_nodelist(nodelist) if nodelist else ["127.0.0.1"])[0]
        port = int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else master_port_for(job_id)
        return DistEnv(
            launcher="slurm",
            rank=int(env["SLURM_PROCID"]),
            world_size=world,
            local_rank=int(env.get("SLURM_LOCALID", "0")),
            local_world_size=max(1, world // max(1, nodes)),
            master_addr=addr,
            master_port=port,
            job_id=job_id,
            attempt=attempt,
        )
    return DistEnv("single", 0, 1, 0, 1, "127.0.0.1", 0, job_id, attempt)


def pick_device(denv: DistEnv, backend_pref: str | None = None) -> tuple[torch.device, str]:
    """(device, backend): this rank's GPU and nccl when there is one, else CPU and gloo."""
    if torch.cuda.is_available() and backend_pref != "gloo":
        index = denv.local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index), "nccl"
    return torch.device("cpu"), "gloo"


def set_cpu_threads(denv: DistEnv, env: Mapping[str, str] | None = None) -> int:
    """Intra-op threads: OMP_NUM_THREADS / SLURM_CPUS_PER_TASK if set, else this node's
    CPUs shared among its ranks (two ranks on two cores must not fight over both)."""
    env = os.environ if env is None else env
    given = env.get("OMP_NUM_THREADS") or env.get("SLURM_CPUS_PER_TASK")
    if given and given.isdigit() and int(given) > 0:
        n = int(given)
    else:
        n = max(1, len(os.sched_getaffinity(0)) // max(1, denv.local_world_size))
    torch.set_num_threads(n)
    return n


def init_process_group(denv: DistEnv, backend: str, device: torch.device) -> None:
    timeout = timedelta(seconds=int(os.environ.get("OLMOCTL_DIST_TIMEOUT_S", "1800")))
    device_id = device if device.type == "cuda" else None
    if denv.launcher == "single":
        dist.init_process_group(
            backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout
        )
        return
    dist.init_process_group(
        backend,
        init_method=f"tcp://{denv.master_addr}:{denv.master_port}",
        rank=denv.rank,
        world_size=denv.world_size,
        timeout=timeout,
        device_id=device_id,
    )


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
