"""The job side at scale (issue 23 item 3): what the burn-in and the straggler report cost
rank 0 at 1, 8, 64 and 256 nodes of 8 ranks (8 to 2,048 ranks), with fake measurements.

- burn-in meeting: rank 0 hosts a TCPStore (a real one, on this machine) that every task
  writes its arrival and its report to; rank 0 collects them with Meeting.collect. Here every
  key is already there (the best case: no task late): the table counts rank 0's store round
  trips (check + get per key, each a request to the store) and times them.
- burn-in plan and verdict: ring_rounds over the node leaders (pairs, rounds) and step._judge
  (the function rank 0 runs on the collected reports: per-node tallies, neighbour links, then
  judge.judge), with every node healthy.
- straggler report (observe/stragglers.StepTimes.report, every log interval on every rank):
  the collectives it calls (a fake torch.distributed counts them) and rank 0's work on the
  gathered seconds (stragglers.slowest).

Goal: O(nodes) work per interval, not O(nodes^2) or O(ranks) round trips.

    .venv/bin/python benchmarks/scale_jobside.py [--nodes 1 8 64 256]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from olmoctl.schemas.burnin import BurninConfig  # noqa: E402
from olmoctl.train.burnin import step  # noqa: E402
from olmoctl.train.burnin.judge import measure  # noqa: E402
from olmoctl.train.burnin.meeting import Meeting  # noqa: E402
from olmoctl.train.observe import stragglers  # noqa: E402

GCDS = 8


def node(i: int) -> str:
    return f"nid{5000 + i:06d}"


class CountingStore:
    """A TCPStore's client calls, counted (each one request to the store's server)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.store, name)

        def counted(*a: Any, **k: Any) -> Any:
            self.calls += 1
            return fn(*a, **k)

        return counted


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def meeting_cost(ranks: int) -> tuple[int, float, int, float]:
    """(round trips, seconds) of rank 0 collecting `ranks` arrivals, then `ranks` reports."""
    m = Meeting.__new__(Meeting)
    m.rank = 0
    from datetime import timedelta

    import torch.distributed as dist

    m.store = dist.TCPStore(
        "127.0.0.1",
        _free_port(),
        is_master=True,
        timeout=timedelta(seconds=30),
        wait_for_workers=False,
    )
    for r in range(ranks):  # what every task puts (here from one client, before the clock)
        m.put(f"arrive/{r}", {"node": node(r // GCDS), "local_rank": r % GCDS})
        measures = [measure("gemm", 140.0, device=r % GCDS), measure("memory", 1300.0)]
        m.put(f"report/{r}", {"node": node(r // GCDS), "measures": measures})
    counting = CountingStore(m.store)
    m.store = counting
    t = time.perf_counter()
    got = m.collect([f"arrive/{r}" for r in range(ranks)], time.monotonic() + 30)
    arrive_s = time.perf_counter() - t
    arrive_calls = counting.calls
    t = time.perf_counter()
    m.collect([f"report/{r}" for r in range(ranks)], time.monotonic() + 30)
    report_s = time.perf_counter() - t
    assert len(got) == ranks
    return arrive_calls, arrive_s, counting.calls - arrive_calls, report_s


def late_meeting_cost(ranks: int, spread_s: float) -> tuple[int, float]:
    """(round trips, seconds) of rank 0 collecting `ranks` arrivals that come in evenly over
    `spread_s` (tasks start over seconds at scale): every poll asks again for each missing
    key."""
    import threading
    from datetime import timedelta

    import torch.distributed as dist

    port = _free_port()
    m = Meeting.__new__(Meeting)
    m.rank = 0
    m.store = dist.TCPStore(
        "127.0.0.1", port, is_master=True, timeout=timedelta(seconds=30), wait_for_workers=False
    )
    client = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=timedelta(seconds=30))

    def arrive() -> None:
        t0 = time.monotonic()
        for r in range(ranks):
            time.sleep(max(0.0, t0 + spread_s * r / ranks - time.monotonic()))
            client.set(f"arrive/{r}", json.dumps({"node": node(r // GCDS), "local_rank": 0}))

    counting = CountingStore(m.store)
    m.store = counting
    th = threading.Thread(target=arrive)
    t = time.perf_counter()
    th.start()
    got = m.collect([f"arrive/{r}" for r in range(ranks)], time.monotonic() + 60)
    took = time.perf_counter() - t
    th.join()
    assert len(got) == ranks
    return counting.calls, took


def judge_cost(nodes: int, tmp: Path) -> tuple[int, int, float, int]:
    """(pairs, rounds, seconds of step._judge, store keys rank 0 waits for after the plan)."""
    ranks = nodes * GCDS
    leaders = [n * GCDS for n in range(nodes)]
    rounds = step.ring_rounds(leaders)
    go = {str(r): {"node": node(r // GCDS), "local_rank": r % GCDS} for r in range(ranks)}
    reports = {}
    for r in range(ranks):
        ms = [
            measure("gemm", 140.0 + r % 5, device=r % GCDS),
            measure("memory", 1300.0 + r % 3, device=r % GCDS),
        ]
        if r % GCDS == 0:
            ms += [measure("host_memory", 40.0), measure("filesystem", 800.0)]
        reports[f"report/{r}"] = {"node": node(r // GCDS), "measures": ms}
    results: dict[str, Any] = {f"ar/{r}": [80.0, None] for r in range(ranks)}
    for pairs in rounds:
        for a, b in pairs:
            for r in (a, b):
                results[f"pair/{a}-{b}/{r}"] = [20.0, None]
    want = ranks + sum(2 * len(p) for p in rounds)
    cfg = BurninConfig()
    job = SimpleNamespace(
        cluster=SimpleNamespace(burnin=cfg, max_requeues=3),
        spec=SimpleNamespace(nodes=nodes),
        run_dir=tmp,
    )
    first, last = 5000, 5000 + nodes - 1
    os.environ["SLURM_JOB_NODELIST"] = f"nid[{first:06d}-{last:06d}]" if nodes > 1 else node(0)
    denv = SimpleNamespace(launcher="slurm", local_world_size=GCDS, attempt=0, job_id="7100002")
    t = time.perf_counter()
    verdict = step._judge(job, denv, go, reports, results, rounds, {})
    took = time.perf_counter() - t
    assert verdict.action == "train" and len(verdict.use) == nodes, verdict
    return sum(len(p) for p in rounds), len(rounds), took, want


class FakeDist:
    """torch.distributed as StepTimes.report uses it, for rank 0 of `world`: counts calls."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def all_gather_object(self, out: list[Any], obj: Any) -> None:
        self._count("all_gather_object")
        for r in range(self.world):
            out[r] = node(r // GCDS)

    def all_gather(self, out: list[Any], t: Any) -> None:
        self._count("all_gather")
        for r, o in enumerate(out):
            o.fill_(1.2 + (0.3 if r == self.world // 3 else 0.0) + (r % 7) * 1e-3)

    def get_rank(self) -> int:
        return 0


class NoEvents:
    def __init__(self) -> None:
        self.emitted: list[Any] = []

    def emit(self, ev: Any) -> None:
        self.emitted.append(ev)


def straggler_cost(ranks: int, intervals: int = 20) -> tuple[dict[str, int], float, float]:
    """(collectives over `intervals` reports, seconds per report, seconds of slowest())."""
    import torch

    fake = FakeDist(ranks)
    real = stragglers.dist
    stragglers.dist = fake  # type: ignore[assignment]
    try:
        st = stragglers.StepTimes.__new__(stragglers.StepTimes)
        st.device, st.world, st.cuda = torch.device("cpu"), ranks, False
        st.seconds, st.steps, st.pending, st.open, st.nodes = 1.2, 1, [], {}, None
        events = NoEvents()
        t = time.perf_counter()
        for i in range(intervals):
            st.seconds, st.steps = 1.2, 1
            st.report(i + 1, events)  # type: ignore[arg-type]
        per = (time.perf_counter() - t) / intervals
    finally:
        stragglers.dist = real
    assert events.emitted and events.emitted[-1].rank == ranks // 3
    secs = [1.2 + (r % 7) * 1e-3 for r in range(ranks)]
    names = [node(r // GCDS) for r in range(ranks)]
    t = time.perf_counter()
    for _ in range(10):
        stragglers.slowest(secs, names, 1)
    return fake.calls, per, (time.perf_counter() - t) / 10


def _pair_worker(rank: int, world: int, port: int, timeout_s: float, q: Any) -> None:
    """One single-rank "node" of the burn-in's neighbour-pair phase, as step.run does it:
    each pair of round i is a gloo all-reduce on the prefix f"pair{i}" of the shared store."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    from olmoctl.train.burnin import checks as bc

    store = dist.TCPStore(
        "127.0.0.1",
        port,
        is_master=rank == 0,
        timeout=timedelta(seconds=60),
        wait_for_workers=False,
    )
    out = []
    for i, pairs in enumerate(step.ring_rounds(list(range(world)))):
        for pair in pairs:
            if rank in pair:
                value, err = bc.limited(
                    lambda i=i, pair=pair: bc.collective(
                        "gloo",
                        store,
                        step.pair_prefix(i, pair),
                        pair.index(rank),
                        2,
                        torch.device("cpu"),
                        1.0,
                        timeout_s,
                    ),
                    timeout_s + 5,
                )
                out.append((i, pair, value is not None, (err or "")[:60]))
    q.put((rank, out))
    time.sleep(timeout_s)  # keep the store (rank 0) up while the others finish


def pair_check(world: int, timeout_s: float) -> None:
    """The neighbour pairs of `world` single-rank nodes over gloo on this machine: which
    pairs measured and which timed out."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(target=_pair_worker, args=(r, world, port, timeout_s, q)) for r in range(world)
    ]
    for pr in procs:
        pr.start()
    got = dict(q.get(timeout=4 * timeout_s + 60) for _ in range(world))
    for pr in procs:
        pr.join(timeout_s + 10)
    done: dict[tuple[int, tuple[int, ...]], bool] = {}
    for r in sorted(got):
        for i, pair, ok, _ in got[r]:  # measured: both of its ranks got a number
            done[(i, tuple(pair))] = done.get((i, tuple(pair)), True) and ok
    bad = sorted(k for k, ok in done.items() if not ok)
    print(
        f"\nneighbour pairs, {world} nodes of one rank (gloo, this machine): "
        f"{len(done) - len(bad)} of {len(done)} pairs measured; failed (round, pair): {bad}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, nargs="*", default=[1, 8, 64, 256])
    p.add_argument("--spread", type=float, default=2.0, help="seconds the late arrivals take")
    p.add_argument("--pairs", type=int, default=0, help="also run the real pair phase on N ranks")
    p.add_argument("--pair-timeout", type=float, default=10.0)
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.nodes:
            ranks = n * GCDS
            arrive_rt, arrive_s, report_rt, report_s = meeting_cost(ranks)
            late_rt, late_s = late_meeting_cost(ranks, a.spread)
            pairs, rounds, judge_s, want = judge_cost(n, Path(tmp))
            calls, report_each, slowest_s = straggler_cost(ranks)
            rows.append(
                (
                    n,
                    ranks,
                    arrive_rt,
                    arrive_s,
                    report_rt,
                    report_s,
                    late_rt,
                    late_s,
                    pairs,
                    rounds,
                    want,
                    judge_s,
                    calls,
                    report_each,
                    slowest_s,
                )
            )
            print(f"{n} nodes done", file=sys.stderr, flush=True)
    print("\nburn-in meeting (rank 0 collects every task's arrival, then its report)")
    print(
        f"{'nodes':>5} {'ranks':>6} {'arrive RT':>9} {'seconds':>8} {'report RT':>9} {'seconds':>8}"
        f" {'late arrive RT':>14} {'seconds':>8}"
    )
    for n, r, art, ars, rrt, rrs, lrt, lrs, *_ in rows:
        print(f"{n:>5} {r:>6} {art:>9} {ars:8.3f} {rrt:>9} {rrs:8.3f} {lrt:>14} {lrs:8.3f}")
    print(f"(late: the arrivals spread evenly over {a.spread:g} s while rank 0 polls)")
    print("\nburn-in plan and verdict (ring_rounds, then step._judge on rank 0)")
    print(
        f"{'nodes':>5} {'ranks':>6} {'pairs':>6} {'rounds':>6} {'keys after plan':>15} "
        f"{'judge s':>8}"
    )
    for n, r, _, _, _, _, _, _, pairs, rounds, want, js, *_ in rows:
        print(f"{n:>5} {r:>6} {pairs:>6} {rounds:>6} {want:>15} {js:8.4f}")
    print("\nstraggler report (every log interval; collectives over 20 intervals)")
    print(
        f"{'nodes':>5} {'ranks':>6} {'all_gather':>10} {'..._object':>10} {'s/report':>9} "
        f"{'slowest() s':>11}"
    )
    for n, r, *_, calls, each, sl in rows:
        print(
            f"{n:>5} {r:>6} {calls.get('all_gather', 0):>10} "
            f"{calls.get('all_gather_object', 0):>10} {each:9.5f} {sl:11.5f}"
        )
    if a.pairs:
        pair_check(a.pairs, a.pair_timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
