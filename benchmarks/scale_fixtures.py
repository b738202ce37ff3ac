"""Synthetic scale fixtures (issue 23 item 1): a run directory as a LUMI run of N nodes x 8
GCDs leaves it after several attempts, and a store with many runs and attempts.

Nothing here runs a job: every file is written as the job (olmoctl.train) and Slurm would
write it, through the same names (schemas/contract.py) and event models (schemas/events.py),
and every store row goes through the store's own API (Store().tx(): create_run, add_attempt,
record_checkpoint), so the fixture stays true to the schema.

A run of N nodes (RANKS = 8 N) gets, per attempt: the batch log, one rank log per rank
(`rank_log_bytes` each, rank 0 more: it prints every step), a burn-in (`burnin_node` per node
with every device's numbers, `burnin`, the verdict file), `started`, a `step` and a
`straggler` event per step (the 7b recipe's log_interval is 1), checkpoints, heartbeats,
`exiting`. The attempts: job J restart 0 ends NODE_FAIL, its Slurm requeue (restart 1) ends
TIMEOUT, job J+1 ends FAILED: one rank raised (a traceback), every other rank then timed out
in a collective (the watchdog's line), as a real code error at scale looks. Checkpoints: the
newest `keep_last` (3) complete ones, each with `.metadata`, one DCP shard and one RNG file
per rank (sparse files of a 7B model's shard size: no disk used), trainer_state.json and
`.complete`, plus a torn `.tmp-step_N`.

    .venv/bin/python benchmarks/scale_fixtures.py /work/scale-tmp/fx --nodes 256
    .venv/bin/python benchmarks/scale_fixtures.py /work/scale-tmp/big --store-runs 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "benchmarks"))

from scale_fixture_text import (  # noqa: E402
    GCDS,
    SHARD_BYTES_7B,
    Attempt,
    attempt_events,
    attempts_of,
    batch_log,
    node_list,
    node_name,
    rank_log,
)

from olmoctl.core.launch import specs  # noqa: E402
from olmoctl.schemas import contract as rd  # noqa: E402
from olmoctl.schemas.burnin import format_verdict  # noqa: E402
from olmoctl.store import Store  # noqa: E402

__all__ = ["GCDS", "make_run", "make_store", "node_list", "node_name", "record_run"]

ACCOUNT = "cluster.account=project_465000000"
FAILING_RANK_FRACTION = 0.6  # which rank raised: far from rank 0, so no early exit helps


def spec_for(nodes: int, name: str, runs_root: Path) -> Any:
    """The RunSpec `olmoctl launch 7b --cluster lumi --nodes N` would record (micro batch 1:
    2,048 GPUs x 2 does not divide the 7b recipe's global batch)."""
    overrides = [ACCOUNT, f"cluster.runs_root={runs_root}", "train.micro_batch_size=1"]
    return specs.resolve("7b", "lumi", nodes=nodes, name=name, overrides=overrides)


@dataclass
class RunFixture:
    name: str
    run_dir: Path
    nodes: int
    ranks: int
    attempts: list[Attempt]
    failing_rank: int
    checkpoint_steps: list[int]
    files: int = 0  # files written


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0

    def text(self, rel: str, text: str | bytes, size: int | None = None) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        with open(p, "wb") as f:
            f.write(data)
            if size is not None and size > len(data):
                f.truncate(size)  # sparse: the size a listing sees, no disk used
        self.files += 1
        return p


def make_run(
    runs_root: Path,
    nodes: int,
    *,
    name: str | None = None,
    steps_per_attempt: int = 1000,
    ckpt_every: int = 250,
    rank_log_bytes: int = 4096,
    rank0_log_bytes: int = 200_000,
    now: float | None = None,
) -> RunFixture:
    """Write the run directory of a `nodes`-node LUMI run under `runs_root` (not the store:
    record_run). Returns what was written."""
    now = time.time() if now is None else now
    ranks = nodes * GCDS
    name = name or f"scale-{ranks}"
    spec = spec_for(nodes, name, runs_root)
    root = Path(spec.run_dir)
    w = _Writer(root)
    failing = int(ranks * FAILING_RANK_FRACTION) if ranks > 1 else 0
    attempts = attempts_of(nodes, steps_per_attempt, ranks, failing, now)
    w.text(rd.SPEC_FILE, spec.model_dump_json(indent=2))
    events = []
    for no, a in enumerate(attempts, 1):
        w.text(rd.script_file(no), f"#!/bin/bash -l\n# attempt {no} of {name}\n")
        w.text(f"{rd.LOGS_DIR}/{rd.batch_log_name(a.job_id)}", batch_log(a, nodes, failing))
        for r in range(ranks):
            size = rank0_log_bytes if r == 0 else rank_log_bytes
            log = rank_log(r, node_name(r // GCDS), a, size, failing)
            # --open-mode=append: a requeued job's ranks append to the same file
            with open(root / rd.LOGS_DIR / rd.rank_log_name(a.job_id, r), "a") as f:
                f.write(log)
            w.files += a.restart == 0
        w.text(
            f"{rd.BURNIN_DIR}/{rd.verdict_name(a.job_id, a.restart)}",
            format_verdict("train", [node_name(i) for i in range(nodes)], []),
        )
        events.append(attempt_events(a, spec, nodes, ranks, ckpt_every))
    w.text(rd.EVENTS_FILE, "".join(events))
    last = attempts[-1].last_step
    saved = [s for s in range(ckpt_every, last + 1, ckpt_every)]
    keep = saved[-spec.recipe.checkpoint.keep_last :]
    for step in keep:
        _checkpoint(w, root, step, ranks, complete=True)
    _checkpoint(w, root, last - last % ckpt_every + ckpt_every, ranks, complete=False)
    return RunFixture(name, root, nodes, ranks, attempts, failing, keep, w.files)


def _checkpoint(w: _Writer, root: Path, step: int, ranks: int, *, complete: bool) -> None:
    folder = (
        rd.step_dir_name(step) if complete else rd.CHECKPOINT_TMP_PREFIX + rd.step_dir_name(step)
    )
    rel = f"{rd.CHECKPOINTS_DIR}/{folder}"
    w.text(f"{rel}/{rd.DCP_METADATA}", b"\x80\x04synthetic-metadata", size=ranks * 4096)
    for r in range(ranks):
        w.text(f"{rel}/__{r}_0.distcp", b"", size=int(SHARD_BYTES_7B))
        w.text(f"{rel}/rng_{r:05d}.pt", b"", size=1500)
    w.text(f"{rel}/{rd.TRAINER_STATE}", json.dumps({"step": step}) + "\n")
    if complete:
        marker = {
            "step": step,
            "bytes": int(SHARD_BYTES_7B * ranks),
            "saved_at": time.time(),
            "world_size": ranks,
        }
        w.text(f"{rel}/{rd.COMPLETE_MARKER}", json.dumps(marker, indent=2) + "\n")


def record_run(store: Store, fx: RunFixture, *, last_live: bool = False) -> None:
    """The fixture's run, attempts and checkpoints into the store, through its API.
    last_live: the last attempt as the store holds it while the job runs (RUNNING, not
    classified): the next `status` that hears it ended classifies it."""
    spec = spec_for(fx.nodes, fx.name, fx.run_dir.parent)
    with store.tx() as tx:
        tx.create_run(spec, state="CODE_ERROR", created_at=fx.attempts[0].t0 - 600)
        for i, a in enumerate(fx.attempts):
            live = last_live and i == len(fx.attempts) - 1
            tx.add_attempt(
                fx.name,
                job_id=a.job_id,
                cluster="lumi",
                nodes=fx.nodes,
                node_list=node_list(fx.nodes),
                submitted_at=a.t0 - 300,
                started_at=a.t0,
                ended_at=None if live else a.t1,
                state="RUNNING" if live else a.state,
                exit_code=None if live else ("1:0" if a.state == "FAILED" else "0:0"),
                reason=None if live else a.reason,
                klass=None if live else a.klass,
                first_step=a.first_step,
                last_step=a.last_step,
                restart_index=a.restart,
                script=f"#!/bin/bash -l\n# {fx.name}\n",
                evidence={"slurm_state": a.state},
            )
        for step in fx.checkpoint_steps:
            path = fx.run_dir / rd.CHECKPOINTS_DIR / rd.step_dir_name(step)
            tx.record_checkpoint(
                fx.name, step, str(path), True, int(SHARD_BYTES_7B * fx.ranks), fx.attempts[-1].t1
            )
        if last_live:
            tx.set_run_state(fx.name, "RUNNING")


def make_store(
    state_dir: Path,
    runs_root: Path,
    *,
    runs: int = 1000,
    attempts_per_run: int = 100,
    nodes: int = 256,
) -> int:
    """A store with `runs` finished runs of `attempts_per_run` attempts each (100,000 by
    default): months of history. Their run directories do not exist (a finished run's
    row says all that `status` shows). Returns the attempts written."""
    store = Store(state_dir)
    base = spec_for(nodes, "history-0000", runs_root)
    now = time.time()
    n = 0
    with store.tx() as tx:
        for i in range(runs):
            name = f"history-{i:04d}"
            s = base.model_copy(update={"name": name, "run_dir": f"{runs_root}/{name}"})
            t = now - 90 * 86_400 + i * 3600
            tx.create_run(s, state="COMPLETED", created_at=t)
            for k in range(attempts_per_run):
                end = k == attempts_per_run - 1
                tx.add_attempt(
                    name,
                    job_id=str(5_000_000 + i * attempts_per_run + k),
                    cluster="lumi",
                    nodes=nodes,
                    node_list=node_list(nodes),
                    submitted_at=t + k * 60,
                    started_at=t + k * 60 + 5,
                    ended_at=t + k * 60 + 50,
                    state="COMPLETED" if end else "NODE_FAIL",
                    klass="COMPLETED" if end else "NODE_FAIL",
                    reason="completed" if end else f"node failure on {node_name(k % nodes)}",
                    first_step=k * 10 + 1,
                    last_step=k * 10 + 10,
                    restart_index=0,
                    evidence={"slurm_state": "NODE_FAIL"},
                )
                n += 1
            tx.update_summary(name, {"step": attempts_per_run * 10, "loss": 2.5})
    store.close()
    return n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="folder to fill: runs/ and state/ (fresh)")
    p.add_argument("--nodes", type=int, nargs="*", default=[256])
    p.add_argument("--store-runs", type=int, default=0, help="history runs (100 attempts each)")
    p.add_argument("--steps", type=int, default=1000, help="steps per attempt")
    a = p.parse_args()
    runs_root, state = a.out / "runs", a.out / "state"
    for n in a.nodes:
        t = time.perf_counter()
        fx = make_run(runs_root, n, steps_per_attempt=a.steps)
        record_run(Store(state), fx)
        print(f"{fx.name}: {fx.ranks} ranks, {fx.files} files in {time.perf_counter() - t:.1f} s")
    if a.store_runs:
        t = time.perf_counter()
        got = make_store(state, runs_root, runs=a.store_runs)
        print(f"store: {a.store_runs} runs, {got} attempts in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
