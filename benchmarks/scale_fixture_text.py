"""The text of the synthetic scale fixtures (benchmarks/scale_fixtures.py): events as the
job writes them (schemas/events.py models, EventLog's line format), rank logs and the batch
log as srun and the batch script leave them, and the three attempts of the fixture run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from olmoctl.schemas import contract as rd
from olmoctl.schemas import events as E

GCDS = 8  # LUMI-G: 8 GCDs (ranks) per node
FIRST_NODE = 5000  # nid005000...
SHARD_BYTES_7B = 7e9 * 16 // 2048  # params + Adam state in fp32, per rank of 2,048


def node_name(i: int) -> str:
    return f"nid{FIRST_NODE + i:06d}"


def node_list(nodes: int) -> str:
    """Slurm's compressed form, as sacct and the store hold it."""
    if nodes == 1:
        return node_name(0)
    return f"nid[{FIRST_NODE:06d}-{FIRST_NODE + nodes - 1:06d}]"


@dataclass
class Attempt:
    job_id: str
    restart: int
    state: str  # Slurm's word
    klass: str
    reason: str
    first_step: int
    last_step: int
    t0: float
    t1: float
    evidence: dict[str, Any] = field(default_factory=dict)


def _event(ev: E.Event, ts: float) -> str:
    # As train/observe/events.EventLog.emit writes a line.
    record = {"ts": ts, "event": ev.event, **ev.payload()}
    return json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"


def _burnin_events(a: Attempt, nodes: int, ts: float) -> list[str]:
    out = []
    names = [node_name(i) for i in range(nodes)]
    for i, node in enumerate(names):
        checks = []
        for d in range(GCDS):
            checks.append(
                {
                    "check": "gemm",
                    "value": 140.0 + (i + d) % 7,
                    "unit": "TFLOP/s",
                    "limit": 99.0,
                    "median": 143.0,
                    "ok": True,
                    "device": d,
                }
            )
            checks.append(
                {
                    "check": "memory",
                    "value": 1300.0 + d,
                    "unit": "GB/s",
                    "limit": 900.0,
                    "median": 1303.0,
                    "ok": True,
                    "device": d,
                }
            )
        for check, v, unit in (
            ("host_memory", 40.0, "GB/s"),
            ("filesystem", 800.0, "MB/s"),
            ("pair", 20.0 + i % 3, "GB/s"),
        ):
            checks.append(
                {"check": check, "value": v, "unit": unit, "limit": v / 2, "median": v, "ok": True}
            )
        ev = E.BurninNode(job_id=a.job_id, attempt=a.restart, node=node, ok=True, checks=checks)
        out.append(_event(ev, ts))
    verdict = E.Burnin(
        job_id=a.job_id,
        attempt=a.restart,
        action="train",
        nodes=names,
        use=names,
        spare=[],
        excluded=[],
        busbw_gbps=80.0,
        seconds=95.0,
        note="",
    )
    out.append(_event(verdict, ts + 1))
    return out


def attempt_events(a: Attempt, spec: Any, nodes: int, ranks: int, ckpt_every: int) -> str:
    names = [node_name(i) for i in range(nodes)]
    lines = _burnin_events(a, nodes, a.t0)
    ts = a.t0 + 100
    lines.append(
        _event(
            E.Started(
                run=spec.name,
                job_id=a.job_id,
                attempt=a.restart,
                launcher="slurm",
                nodes=names,
                world_size=ranks,
                start_step=a.first_step - 1,
                total_steps=spec.recipe.train.total_steps,
                checkpoint_loaded=None,
                fsdp=True,
                pid=4242,
            ),
            ts,
        )
    )
    span = a.t1 - ts
    n = a.last_step - a.first_step + 1
    for k, step in enumerate(range(a.first_step, a.last_step + 1)):
        t = ts + span * (k + 1) / (n + 1)
        lines.append(
            _event(
                E.Step(
                    step=step,
                    loss=3.0 - step * 1e-4,
                    lr=3e-4,
                    grad_norm=0.9,
                    tokens_per_s=4.1e6,
                    mfu=0.41,
                    tokens_seen=step * 4_194_304,
                ),
                t,
            )
        )
        slow = (step * 7) % ranks
        lines.append(
            _event(
                E.Straggler(
                    step=step,
                    rank=slow,
                    node=names[slow // GCDS],
                    seconds=1.31,
                    median_s=1.2,
                    ratio=1.09,
                    world_size=ranks,
                    slowest=[
                        {
                            "rank": (slow + j) % ranks,
                            "node": names[((slow + j) % ranks) // GCDS],
                            "seconds": 1.31 - j * 0.01,
                        }
                        for j in range(3)
                    ],
                ),
                t,
            )
        )
        if step % 30 == 0:
            lines.append(_event(E.Heartbeat(step=step), t))
        if step % ckpt_every == 0:
            lines.append(
                _event(
                    E.CheckpointSaved(
                        step=step,
                        path=str(rd.checkpoints_root(spec.run_dir) / rd.step_dir_name(step)),
                        seconds=42.0,
                        bytes=int(SHARD_BYTES_7B * ranks),
                        stall_s=3.0,
                        mode="async",
                    ),
                    t,
                )
            )
    reason = {"FAILED": "error", "TIMEOUT": "preempted"}.get(a.state)
    if reason:
        lines.append(
            _event(
                E.Exiting(
                    reason=reason, exit_status=1 if reason == "error" else 42, step=a.last_step
                ),
                a.t1,
            )
        )
    return "".join(lines)


def rank_log(rank: int, node: str, a: Attempt, size: int, failing: int | None) -> str:
    head = (
        f"rank {rank} on {node}: device {rank % GCDS} (AMD Instinct MI250X), world {a.job_id}\n"
        f"{node}:{rank}:{rank} [0] NCCL INFO Bootstrap : Using hsn0:10.253.{rank % 250}.1<0>\n"
        f"{node}:{rank}:{rank} [0] NCCL INFO NET/OFI Selected Provider is cxi\n"
    )
    filler_line = (
        f"{node}:{rank}:{rank} [0] NCCL INFO Channel 00/0 : {rank} -> {rank + 1} via NET\n"
    )
    body = head
    while len(body) < size - 600:
        body += filler_line
    if failing is not None and a.state == "FAILED":
        if rank == failing:
            body += (
                "Traceback (most recent call last):\n"
                '  File "/opt/olmoctl/olmoctl/train/trainer.py", line 288, in train\n'
                "    loss = self.model(batch)\n"
                '  File "/opt/olmoctl/olmoctl/train/model/olmo.py", line 141, in forward\n'
                "    x = self.att_proj(x)\n"
                "RuntimeError: HIP error: an illegal memory access was encountered\n"
            )
        else:
            body += (
                f"[rank{rank}]:[E ProcessGroupNCCL.cpp:616] [Rank {rank}] Watchdog caught "
                "collective operation timeout: WorkNCCL(SeqNum=91234, OpType=_ALLGATHER_BASE, "
                "Timeout(ms)=600000) ran for 600021 milliseconds before timing out.\n"
            )
    return body


def batch_log(a: Attempt, nodes: int, failing: int) -> str:
    lines = [
        f"olmoctl: job {a.job_id} restart {a.restart} on {node_list(nodes)}\n",
        "burn-in: train on every node\n",
    ]
    if a.state == "NODE_FAIL":
        lines.append(
            f"slurmstepd: error: *** JOB {a.job_id} ON {node_name(0)} CANCELLED AT "
            f"2026-12-01T10:00:00 DUE TO NODE FAILURE, SEE SLURMCTLD LOG ***\n"
            f"Node failure on {node_name(nodes // 2)}\n"
        )
    elif a.state == "TIMEOUT":
        lines.append(
            f"slurmstepd: error: *** JOB {a.job_id} ON {node_name(0)} CANCELLED AT "
            "2026-12-02T10:00:00 DUE TO TIME LIMIT ***\n"
        )
    elif a.state == "FAILED":
        lines.append(
            f"srun: error: {node_name(failing // GCDS)}: task {failing}: Exited with exit code 1\n"
        )
        lines.append(f"srun: Terminating StepId={a.job_id}.0\n")
    return "".join(lines)


def attempts_of(nodes: int, steps: int, ranks: int, failing: int, now: float) -> list[Attempt]:
    j = "7100001"
    t = now - 3 * 86_400
    rows = [
        ("NODE_FAIL", "NODE_FAIL", f"node failure on {node_name(nodes // 2)}", j, 0),
        ("TIMEOUT", "TIMEOUT", "time limit reached", j, 1),
        (
            "FAILED",
            "CODE_ERROR",
            f"rank {failing}: RuntimeError: HIP error: an illegal memory access was encountered",
            "7100002",
            0,
        ),
    ]
    out, step = [], 1
    for state, klass, reason, job, restart in rows:
        out.append(
            Attempt(job, restart, state, klass, reason, step, step + steps - 1, t, t + 20_000)
        )
        step += steps - steps // 10  # the next attempt redoes a tenth since its checkpoint
        t += 24_000
    return out
