"""Stragglers: the job's arithmetic (train/stragglers.slowest), the watcher's rule
(core/stragglers.persistent) and what watch does with it (report / restart), what
`status RUN` shows. The real slowed node is in tests/integration/test_watchers.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from olmoctl.core.launch import submit as launch
from olmoctl.core.supervise import stragglers as core_sg
from olmoctl.core.supervise import watch as supervise
from olmoctl.core.track.runs import spec_of
from olmoctl.schemas.events import Straggler, parse_event
from olmoctl.store import Store
from olmoctl.train.observe.stragglers import slowest
from tests.unit.test_store import FakeBackend


def test_slowest_rank_and_ratio_to_the_median() -> None:
    ev = slowest([1.0, 3.0, 1.2, 0.9], ["a", "b", "c", "d"], step=20)
    assert ev is not None
    assert (ev.rank, ev.node, ev.seconds, ev.world_size, ev.step) == (1, "b", 3.0, 4, 20)
    assert ev.median_s == 1.0 and ev.ratio == 3.0  # the median of the others: 0.9, 1.0, 1.2
    assert [s["rank"] for s in ev.slowest] == [1, 2, 0]
    even = slowest([2.0, 1.0, 5.0, 3.0, 1.0], ["n1", "n2", "n3", "n4", "n5"], step=5)
    assert even.median_s == 1.5 and even.ratio == pytest.approx(5.0 / 1.5) and even.node == "n3"
    two = slowest([0.02, 0.08], ["node1", "node2"], step=5)  # two ranks: 4x, not capped at 2x
    assert two.node == "node2" and two.ratio == pytest.approx(4.0)
    tie = slowest([1.0, 1.0], ["n1", "n2"], step=1)
    assert tie.rank == 0 and tie.ratio == 1.0  # ties: the lowest rank
    assert slowest([1.0], ["n1"], step=1) is None  # one rank: nobody to compare with
    assert slowest([0.0, 0.0], ["n1", "n2"], step=1) is None  # nothing measured
    line = json.loads(json.dumps({"event": "straggler", **ev.payload()}))
    assert isinstance(parse_event(line), Straggler)


def sg(node: str, ratio: float, step: int = 10) -> Straggler:
    return Straggler(step=step, node=node, rank=1, ratio=ratio, seconds=ratio, median_s=1.0)


def test_persistent_needs_the_same_node_over_the_ratio_m_times() -> None:
    assert core_sg.persistent([sg("n2", 2.0)] * 3, 1.5, 3).node == "n2"
    assert core_sg.persistent([sg("n2", 2.0)] * 2, 1.5, 3) is None  # not yet M intervals
    assert core_sg.persistent([sg("n2", 2.0), sg("n1", 2.0), sg("n2", 2.0)], 1.5, 3) is None
    assert core_sg.persistent([sg("n2", 2.0), sg("n2", 1.4), sg("n2", 2.0)], 1.5, 3) is None
    # only the last M count: an old slow spell that ended is not acted on
    assert core_sg.persistent([sg("n2", 2.0)] * 3 + [sg("n2", 1.0)], 1.5, 3) is None


class SavingBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.saves: list[str] = []

    def request_save(self, job_id: str, run_dir: str) -> None:
        self.saves.append(job_id)


@pytest.fixture
def running(user_env, tmp_path: Path, monkeypatch):
    """Run r with one RUNNING attempt (job 101 on node1,node2) whose events say node2 was
    2.5x slower for 3 log intervals."""
    store = Store()
    fake = SavingBackend()
    for mod in (supervise, core_sg):
        monkeypatch.setattr(mod, "backend_for", lambda spec: fake)
    monkeypatch.setattr(supervise.status, "backend_for", lambda sched: fake)
    spec = launch.prepare(store, "tiny", "dev", nodes=2, name="r", time_limit=None,
                          overrides=[f"cluster.runs_root={tmp_path}"])  # fmt: skip
    launch.submit_attempt(store, spec, fake, new_run=True)
    supervise.status.refresh(store)  # the fake says RUNNING
    now = time.time()  # recent: not a hang
    lines = [{"ts": now, "event": "started", "job_id": "101", "attempt": 0}]
    for step in (10, 20, 30):
        lines.append({"ts": now, "event": "straggler", "step": step, "rank": 1, "node": "node2",
                      "seconds": 0.25, "median_s": 0.1, "ratio": 2.5, "world_size": 2})  # fmt: skip
    events = Path(spec.run_dir) / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return store, fake


def test_report_says_it_once_and_excludes_nothing(running) -> None:
    store, fake = running
    sent = []
    out = supervise.tick(store, "me", supervise.WatchPolicy(), ["r"], sent.append)
    assert any("node node2 is a straggler: 2.50x the median" in line for line in out), out
    assert [n.kind for n in sent] == ["straggler"] and sent[0].fields["node"] == "node2"
    assert supervise.tick(store, "me", supervise.WatchPolicy(), ["r"], sent.append) == []
    assert store.nodes() == [] and fake.saves == []


def test_restart_excludes_the_node_with_why_and_asks_the_job_to_save(running, cli) -> None:
    store, fake = running
    policy = supervise.WatchPolicy(stragglers=core_sg.StragglerPolicy("restart", 2.0, 3))
    out = supervise.tick(store, "me", policy, ["r"])
    assert fake.saves == ["101"] and any("asked to save and restart" in line for line in out)
    (row,) = store.nodes()
    assert row.node == "node2" and row.failures >= 1
    assert row.last_reason.startswith("straggler: 2.50x the median compute per step")
    threshold = spec_of(store.get_run("r")).cluster.node_failure_threshold
    assert supervise.excluded(store, "dev", threshold) == ["node2"]
    assert supervise.tick(store, "me", policy, ["r"]) == [] and fake.saves == ["101"]  # once
    store.close()
    listed = cli("nodes")
    assert listed.code == 0 and "straggler: 2.50x" in listed.out


def test_status_run_shows_the_straggler(running, cli, monkeypatch) -> None:
    store, fake = running
    monkeypatch.setattr("olmoctl.core.track.status.backend_for", lambda sched: fake)
    store.close()
    res = cli("status", "r")
    assert res.code == 0, res.err
    assert "straggler: node2 (rank 1) 2.50x the median compute per step" in res.out
    res = cli("status", "r", "--json")
    assert json.loads(res.out)["straggler"]["node"] == "node2"


def test_restart_never_excludes_a_name_that_is_not_a_host(running) -> None:
    store, fake = running
    events = Path(store.get_run("r").run_dir) / "events.jsonl"
    events.write_text(events.read_text().replace('"node2"', '"node2,node1 --x"'))
    policy = supervise.WatchPolicy(stragglers=core_sg.StragglerPolicy("restart", 2.0, 3))
    out = supervise.tick(store, "me", policy, ["r"])
    assert any("not excluded" in line and "not a host name" in line for line in out), out
    assert store.nodes() == [] and fake.saves == []


def test_request_save_refuses_a_job_id_that_is_not_one(monkeypatch) -> None:
    from olmoctl.backends import slurm_cli
    from olmoctl.backends.slurm import SlurmBackend
    from olmoctl.errors import OlmoctlError

    calls: list[list[str]] = []
    monkeypatch.setattr(slurm_cli, "run", lambda args, **kw: calls.append(args))
    with pytest.raises(OlmoctlError, match="not a Slurm job id"):
        SlurmBackend().request_save("--signal=KILL", "")
    assert calls == []  # nothing reached scancel
