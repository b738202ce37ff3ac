"""Burn-in: check every node of the allocation before step 1, inside the job.

    srun ... python -u -m olmoctl.train.burnin RUN_DIR/spec.json      (the batch script)

Every task of the allocation (one per device) runs this before the training step, in the same
container and environment. They meet on a TCPStore of their own on the first node (never a
process group of everyone: a node that does not start must not stop the others), then:

1. arrive: each task says where it is; rank 0 waits `start_timeout_s` for all of them.
2. local checks, each within `check_timeout_s` (burnin_checks): per device GEMM and memory,
   per node host memory (GPU nodes) and the filesystem (run directory, data files).
3. across nodes: one all-reduce among every task that reported (bus bandwidth), then
   neighbour pairs of nodes in rounds (a ring), so a slow link names its node.
4. rank 0 judges (burnin_judge), writes `burnin_node` + `burnin` events and the verdict
   file (schemas/burnin.py) that the batch script reads: train on `use`, or requeue without
   `exclude`, or fail.

The exit status is 0 whatever the nodes did (the verdict says it); 2 on bad input.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from olmoctl.errors import UsageError
from olmoctl.fileio import atomic_write
from olmoctl.schemas import contract
from olmoctl.schemas.burnin import BurninConfig, format_verdict, parse_verdict
from olmoctl.schemas.events import Burnin, BurninNode
from olmoctl.schemas.shellsafe import is_host
from olmoctl.train.burnin.gone import GoneTasks
from olmoctl.train.burnin.judge import Judgement, judge, measure
from olmoctl.train.burnin.meeting import MARGIN_S, Meeting
from olmoctl.train.observe.events import EventLog
from olmoctl.train.runtime.exit_codes import EXIT_BAD_INPUT


def node_name() -> str:
    """Slurm's name for this node (what --nodelist takes), else the host name."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def ring_rounds(leaders: list[int]) -> list[list[list[int]]]:
    """Neighbour pairs (i, i+1) of a ring of node leaders, in rounds where no node is in two
    pairs: 2 rounds for an even count, 3 for an odd one, 1 for two nodes, none for one."""
    n = len(leaders)
    if n < 2:
        return []
    if n == 2:
        return [[[leaders[0], leaders[1]]]]
    rounds: list[list[list[int]]] = [[], []] if n % 2 == 0 else [[], [], []]
    for i in range(n):
        r = 2 if (n % 2 and i == n - 1) else i % 2
        rounds[r].append([leaders[i], leaders[(i + 1) % n]])
    return rounds


def _data_files(job: Any) -> list[Path]:
    from olmoctl.train.data.tokens import resolve_paths

    recipe, cluster = job.recipe, job.cluster
    return resolve_paths(recipe.data.paths, cluster.data_root if cluster else "")


def local_checks(
    cfg: BurninConfig, device: Any, local_rank: int, run_dir: Path, data: list[Path], tag: str
) -> list[dict[str, Any]]:
    from olmoctl.train.burnin import checks as bc

    gpu = device.type == "cuda"
    limit = cfg.check_timeout_s
    out = []
    size = cfg.gemm_size or (8192 if gpu else 256)
    mem_mb = cfg.memory_mb or (2048 if gpu else 64)
    dev = device.index if gpu else None
    value, err = bc.limited(lambda: bc.gemm(device, size, cfg.measure_s), limit)
    out.append(measure("gemm", value, err, dev))
    value, err = bc.limited(lambda: bc.memory(device, mem_mb, cfg.measure_s), limit)
    out.append(measure("memory", value, err, dev))
    if local_rank == 0:
        if gpu:
            import torch

            cpu = torch.device("cpu")
            value, err = bc.limited(lambda: bc.memory(cpu, 256, cfg.measure_s), limit)
            out.append(measure("host_memory", value, err))
        folder = run_dir / contract.BURNIN_DIR
        value, err = bc.limited(lambda: bc.filesystem(folder, tag, cfg.fs_mb, data), limit)
        out.append(measure("filesystem", value, err))
    return out


def earlier_excluded(run_dir: Path, job_id: str, restart: int) -> list[str]:
    """Nodes that earlier incarnations of this job found bad (their verdict files)."""
    out: set[str] = set()
    for r in range(restart):
        try:
            text = (run_dir / contract.BURNIN_DIR / contract.verdict_name(job_id, r)).read_text()
        except OSError:
            continue
        parsed = parse_verdict(text)
        if parsed is not None:
            out.update(parsed[2])
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from olmoctl.train.runtime.config import load_job_config

    try:
        if len(argv) != 1:
            raise UsageError("usage: python -m olmoctl.train.burnin RUN_DIR/spec.json")
        job = load_job_config(argv[0])
        if job.spec is None or job.cluster is None:
            raise UsageError(f"{argv[0]}: burn-in needs a run spec (spec.json), not a recipe")
    except UsageError as e:
        print(f"olmoctl.train.burnin: error: {e}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    status = run(job)
    sys.stdout.flush()
    sys.stderr.flush()
    # A check stuck in a thread (a hung device or filesystem) must not keep the task alive.
    os._exit(status)


def run(job: Any) -> int:
    from olmoctl.train.runtime import distributed

    t0 = time.monotonic()
    cfg = job.cluster.burnin
    denv = distributed.detect()
    me = node_name()
    rank = denv.rank
    if denv.launcher == "slurm":
        port = contract.burnin_port_for(denv.job_id)
    else:
        port = int(os.environ.get("OLMOCTL_BURNIN_PORT") or denv.master_port + 1)
    try:
        meet = Meeting(denv.master_addr, port, rank, cfg.start_timeout_s)
    except Exception as e:  # rank 0 gone or unreachable: nothing to report to
        print(f"burn-in: rank {rank} on {me}: cannot reach rank 0: {e}", file=sys.stderr)
        return 0
    device, backend = distributed.pick_device(denv, job.cluster.distributed_backend)
    if device.type == "cpu":
        distributed.set_cpu_threads(denv)

    # 1. arrive
    meet.put(f"arrive/{rank}", {"node": me, "local_rank": denv.local_rank})
    world = denv.world_size
    gone = GoneTasks.from_env() if rank == 0 and denv.launcher == "slurm" else None
    if rank == 0:
        keys = [f"arrive/{r}" for r in range(world)]
        got = meet.collect(keys, t0 + cfg.start_timeout_s, gone)
        meet.put("go", {k.split("/")[1]: v for k, v in got.items()})
    try:
        go = meet.get("go", cfg.start_timeout_s + MARGIN_S)
    except Exception:
        print(f"burn-in: rank {rank} on {me}: rank 0 never said go", file=sys.stderr)
        return 0
    if str(rank) not in go:
        return 0  # too late: rank 0 has counted this node as not started

    # 2. local checks
    tag = f"{me}-{denv.local_rank}"
    data = _data_files(job) if denv.local_rank == 0 else []
    measures = local_checks(cfg, device, denv.local_rank, job.run_dir, data, tag)
    meet.put(f"report/{rank}", {"node": me, "measures": measures})
    n_local = 4
    if rank == 0:
        deadline = time.monotonic() + n_local * cfg.check_timeout_s + MARGIN_S
        reports = meet.collect([f"report/{r}" for r in sorted(map(int, go))], deadline, gone)
        members = sorted(int(k.split("/")[1]) for k in reports)
        leaders: dict[str, int] = {}
        for r in members:
            leaders.setdefault(reports[f"report/{r}"]["node"], r)
        meet.put("plan", {"members": members, "rounds": ring_rounds(list(leaders.values()))})
    try:
        plan = meet.get("plan", n_local * cfg.check_timeout_s + 2 * MARGIN_S)
    except Exception:
        return 0

    # 3. across nodes
    members, rounds = plan["members"], plan["rounds"]
    t_plan = time.monotonic()
    if rank in members and len(members) > 1:
        busbw = _collective(meet, backend, "ar", members, rank, device, cfg, ar=True)
        meet.put(f"ar/{rank}", busbw)
    for i, pairs in enumerate(rounds):
        for pair in pairs:
            if rank in pair:
                where = pair_prefix(i, pair)
                bw = _collective(meet, backend, where, pair, rank, device, cfg, ar=False)
                meet.put(f"pair/{pair[0]}-{pair[1]}/{rank}", bw)
    if rank != 0:
        return 0

    # 4. judge (rank 0)
    deadline = t_plan + (1 + len(rounds)) * cfg.check_timeout_s + MARGIN_S
    want = [f"ar/{r}" for r in members] if len(members) > 1 else []
    want += [f"pair/{a}-{b}/{r}" for pairs in rounds for a, b in pairs for r in (a, b)]
    results = meet.collect(want, deadline)
    verdict = _judge(job, denv, go, reports, results, rounds, gone.by_node() if gone else {})
    _publish(job, denv, verdict, results, time.monotonic() - t0)
    return 0


def pair_prefix(round_no: int, pair: list[int]) -> str:
    """The store prefix of one neighbour pair's group: its own, so pairs of one round share
    nothing (one prefix per round made ranks of different pairs meet as one group, and most
    pairs fail, from 4 nodes on)."""
    return f"pair{round_no}/{pair[0]}-{pair[1]}"


def _collective(
    meet: Meeting,
    backend: str,
    prefix: str,
    ranks: list[int],
    rank: int,
    device: Any,
    cfg: BurninConfig,
    *,
    ar: bool,
) -> list[Any]:
    """[GB/s or None, error or None] of one all-reduce among `ranks`."""
    from olmoctl.train.burnin import checks as bc

    mb = cfg.allreduce_mb or (256.0 if device.type == "cuda" else 4.0)
    value, err = bc.limited(
        lambda: bc.collective(
            backend,
            meet.store,
            prefix,
            ranks.index(rank),
            len(ranks),
            device,
            mb,
            cfg.check_timeout_s,
        ),
        cfg.check_timeout_s + MARGIN_S,
    )
    return [value, err]


def _allocation(denv: Any, go: dict[str, Any]) -> list[str]:
    from olmoctl.train.runtime.distributed import expand_nodelist

    nodelist = os.environ.get("SLURM_JOB_NODELIST", "") if denv.launcher == "slurm" else ""
    nodes = expand_nodelist(nodelist) if nodelist else []
    for r in sorted(go, key=int):  # and any node a task reported from (outside Slurm)
        if go[r]["node"] not in nodes:
            nodes.append(go[r]["node"])
    return nodes


def _judge(job, denv, go, reports, results, rounds, ended) -> Judgement:  # type: ignore[no-untyped-def]
    cfg = job.cluster.burnin
    nodes = _allocation(denv, go)
    per_node_tasks = max(1, denv.local_world_size)
    started: dict[str, int] = {}
    for v in go.values():
        started[v["node"]] = started.get(v["node"], 0) + 1
    reported: dict[str, list[dict[str, Any]]] = {}
    rank_node: dict[int, str] = {}
    for key, rep in reports.items():
        rank_node[int(key.split("/")[1])] = rep["node"]
        reported.setdefault(rep["node"], []).extend(rep["measures"])
    missing: dict[str, str] = {}
    for node in nodes:
        if node in ended and sum(1 for n in rank_node.values() if n == node) < per_node_tasks:
            missing[node] = f"its task ended before reporting: {ended[node]}"  # srun's words
        elif node not in started:
            missing[node] = f"did not start within {cfg.start_timeout_s:g} s"
        elif started[node] < per_node_tasks:
            missing[node] = f"only {started[node]} of {per_node_tasks} tasks started"
        elif sum(1 for n in rank_node.values() if n == node) < started[node]:
            missing[node] = "no report from its local checks (hung?)"
    # neighbour pairs: a node's value is its best link
    links: dict[str, list[tuple[float | None, str | None]]] = {}
    for pairs in rounds:
        for a, b in pairs:
            got = [results.get(f"pair/{a}-{b}/{r}") for r in (a, b)]
            vals = [g[0] for g in got if g and g[0] is not None]
            errs = [g[1] for g in got if g and g[1]]
            res = (min(vals), None) if len(vals) == 2 else (None, errs[0] if errs else "timed out")
            for r in (a, b):
                links.setdefault(rank_node[r], []).append(res)
    for node, ls in links.items():
        best = max((v for v, _ in ls if v is not None), default=None)
        err = None if best is not None else next((e for _, e in ls if e), "no answer")
        reported.setdefault(node, []).append(measure("pair", best, err))
    ar = results.get("ar/0")
    busbw = ar[0] if ar else None
    return judge(
        nodes,
        reported,
        missing,
        cfg,
        need=job.spec.nodes,
        restart=denv.attempt,
        max_requeues=job.cluster.max_requeues,
        earlier_excluded=earlier_excluded(job.run_dir, denv.job_id, denv.attempt),
        busbw_gbps=busbw,
    )


def _publish(job, denv, verdict: Judgement, results, seconds: float) -> None:  # type: ignore[no-untyped-def]
    log = EventLog(job.run_dir, enabled=True)
    ar = results.get("ar/0") or [None, None]
    bad = {e["node"] for e in verdict.excluded}
    for node in verdict.allocation:
        log.emit(
            BurninNode(
                job_id=denv.job_id,
                attempt=denv.attempt,
                node=node,
                ok=node not in bad,
                checks=verdict.nodes.get(node, []),
            )
        )
    log.emit(
        Burnin(
            job_id=denv.job_id,
            attempt=denv.attempt,
            action=verdict.action,
            nodes=verdict.allocation,
            use=verdict.use,
            spare=verdict.spare,
            excluded=verdict.excluded,
            busbw_gbps=ar[0],
            seconds=round(seconds, 3),
            note=verdict.note or (f"all-reduce: {ar[1]}" if ar[1] else ""),
        )
    )
    log.close()
    safe_use = [n for n in verdict.use if is_host(n)]
    safe_exclude = [n for n in verdict.exclude if is_host(n)]
    path = Path(
        os.environ.get("OLMOCTL_BURNIN_VERDICT")
        or job.run_dir / contract.BURNIN_DIR / contract.verdict_name(denv.job_id, denv.attempt)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, format_verdict(verdict.action, safe_use, safe_exclude))
    _print(verdict, ar, seconds)


def _print(verdict: Judgement, ar: list[Any], seconds: float) -> None:
    for node, rows in verdict.nodes.items():
        parts = []
        for m in rows:
            shown = m.get("error") or f"{m['value']:.3g} {m['unit']}"
            parts.append(f"{m['check']} {shown}{'' if m['ok'] else ' BAD'}")
        print(f"burn-in: {node}: " + ", ".join(parts), flush=True)
    for e in verdict.excluded:
        print(f"burn-in: {e['node']} left out: {e['reason']}", flush=True)
    if ar[0] is not None:
        print(f"burn-in: all-reduce bus bandwidth {ar[0]:.3g} GB/s", flush=True)
    use = ",".join(verdict.use) or "-"
    note = f"; {verdict.note}" if verdict.note else ""
    print(f"burn-in: {verdict.action} on {use} ({seconds:.1f} s){note}", flush=True)
