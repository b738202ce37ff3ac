"""Burn-in: the verdict from measured numbers (train/burnin_judge), the verdict file, the
spare-node spec, and what the store keeps (node health with measured vs expected)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from olmoctl.core.launch.specs import resolve
from olmoctl.core.track import burnin as core_burnin
from olmoctl.errors import UsageError
from olmoctl.schemas.burnin import BurninConfig, format_verdict, parse_verdict
from olmoctl.schemas.events import Burnin, BurninNode, parse_event
from olmoctl.store import Store
from olmoctl.train.burnin.judge import judge, measure
from olmoctl.train.burnin.step import ring_rounds

CFG = BurninConfig()


def _node(gemm: float, mem: float = 10.0, fs: float = 100.0, pair: float = 1.0) -> list[dict]:
    return [
        measure("gemm", gemm),
        measure("memory", mem),
        measure("filesystem", fs),
        measure("pair", pair),
    ]


def test_a_slow_node_is_left_out_when_there_is_a_spare() -> None:
    reports = {"n1": _node(10.0), "n2": _node(2.0), "n3": _node(9.5)}
    j = judge(["n1", "n2", "n3"], reports, {}, CFG, need=2)
    assert j.action == "train" and j.use == ["n1", "n3"] and j.spare == []
    (bad,) = j.excluded
    assert bad["node"] == "n2" and bad["check"] == "gemm"
    assert bad["measured"] == 2.0 and bad["expected"] == pytest.approx(0.5 * 9.5)
    assert "gemm 2 TFLOP/s < 4.75 (0.5 x median 9.5)" in bad["reason"]


def test_healthy_spares_stay_idle_and_the_best_train_in_allocation_order() -> None:
    reports = {"n1": _node(8.0), "n2": _node(10.0), "n3": _node(9.0)}
    j = judge(["n1", "n2", "n3"], reports, {}, CFG, need=2)
    assert j.action == "train" and j.use == ["n2", "n3"] and j.spare == ["n1"]
    assert j.excluded == []


def test_without_spares_the_job_requeues_once_without_every_bad_node() -> None:
    reports = {f"n{i}": _node(10.0) for i in range(1, 6)}
    reports["n2"] = _node(1.0)
    reports["n4"] = [*_node(10.0)[:2], measure("filesystem", None, "OSError: read-only"), *[]]
    j = judge(list(reports), reports, {}, CFG, need=5, restart=1, earlier_excluded=["n9"])
    assert j.action == "requeue" and j.use == []
    assert j.exclude == ["n2", "n4", "n9"]  # this job's earlier finds stay excluded
    reasons = {e["node"]: e["reason"] for e in j.excluded}
    assert "read-only" in reasons["n4"] and reasons["n2"].startswith("gemm")


def test_a_node_that_never_reported_is_named() -> None:
    reports = {"n1": _node(10.0), "n3": _node(10.0)}
    j = judge(["n1", "n2", "n3"], reports, {"n2": "did not start within 5 s"}, CFG, need=2)
    assert j.action == "train" and j.use == ["n1", "n3"]
    assert j.excluded == [
        {
            "node": "n2",
            "check": "start",
            "measured": None,
            "expected": None,
            "unit": "",
            "reason": "did not start within 5 s",
        }
    ]


def test_most_nodes_failing_is_the_setup_not_the_nodes() -> None:
    cfg = BurninConfig(min_gemm_tflops=100.0)  # a floor no node reaches
    reports = {"n1": _node(10.0), "n2": _node(11.0), "n3": _node(12.0)}
    j = judge(["n1", "n2", "n3"], reports, {}, cfg, need=2)
    assert j.action == "fail" and "setup" in j.note


def test_the_floor_names_a_node_the_median_would_not() -> None:
    cfg = BurninConfig(min_gemm_tflops=9.0)
    reports = {"n1": _node(10.0), "n2": _node(8.9), "n3": _node(10.0)}
    j = judge(["n1", "n2", "n3"], reports, {}, cfg, need=2)
    assert [e["node"] for e in j.excluded] == ["n2"] and j.excluded[0]["expected"] == 9.0


def test_the_requeue_budget_ends_in_failure() -> None:
    reports = {"n1": _node(10.0), "n2": _node(1.0)}
    j = judge(["n1", "n2"], reports, {}, CFG, need=2, restart=3, max_requeues=3)
    assert j.action == "fail" and "max_requeues" in j.note


def test_the_worst_device_of_a_node_counts() -> None:
    reports = {
        "n1": [measure("gemm", 10.0, device=0), measure("gemm", 2.0, device=1)],
        "n2": [measure("gemm", 10.0, device=0), measure("gemm", 10.0, device=1)],
        "n3": [measure("gemm", 10.0, device=0), measure("gemm", 9.0, device=1)],
    }
    j = judge(["n1", "n2", "n3"], reports, {}, CFG, need=2)
    assert [e["node"] for e in j.excluded] == ["n1"]


def test_a_shared_filesystem_needs_a_far_outlier() -> None:
    reports = {"n1": _node(10.0, fs=400.0), "n2": _node(10.0, fs=90.0), "n3": _node(10.0)}
    assert judge(["n1", "n2", "n3"], reports, {}, CFG, need=3).action == "train"


@pytest.mark.parametrize("n", range(1, 9))
def test_ring_rounds_cover_every_neighbour_pair_once_without_overlap(n: int) -> None:
    rounds = ring_rounds(list(range(n)))
    pairs = [tuple(p) for r in rounds for p in r]
    want = set() if n < 2 else {tuple(sorted((i, (i + 1) % n))) for i in range(n)}
    assert {tuple(sorted(p)) for p in pairs} == want and len(pairs) == len(want)
    for r in rounds:
        members = [x for p in r for x in p]
        assert len(members) == len(set(members))  # no node in two pairs at once


def test_the_verdict_file_round_trips_and_refuses_what_is_not_a_host() -> None:
    text = format_verdict("train", ["node1", "node3"], ["node2"])
    assert parse_verdict(text) == ("train", ["node1", "node3"], ["node2"])
    with pytest.raises(ValueError):
        format_verdict("train", ["node1;reboot"], [])
    with pytest.raises(ValueError):
        format_verdict("explode", [], [])
    for bad in (
        "action=train\nuse=node1,$(pwn)\n",
        "action=train\nuse=node1\nextra=1\n",
        "action=rm\nuse=\n",
        "action=train\nuse=-x\n",
    ):
        assert parse_verdict(bad) is None, bad


def test_spare_nodes_in_the_spec(user_env: Path) -> None:
    spec = resolve("tiny", "dev", nodes=2, spare_nodes=1)
    assert spec.allocated_nodes == 3 and spec.world_size == 2
    assert resolve("tiny", "dev", nodes=2).spare_nodes == 0
    default = resolve("tiny", "dev", nodes=2, overrides=["cluster.burnin.spare_nodes=2"])
    assert default.spare_nodes == 2  # the profile's default
    off = resolve("tiny", "dev", nodes=2, overrides=["cluster.burnin.enabled=false"])
    assert off.spare_nodes == 0
    for kw, words in (
        ({"nodes": 6, "spare_nodes": 3}, "limit of 8"),
        ({"nodes": 2, "spare_nodes": 1, "overrides": ["cluster.burnin.enabled=false"]}, "burn-in"),
    ):
        with pytest.raises(UsageError, match=words):
            resolve("tiny", "dev", **kw)
    with pytest.raises(UsageError, match="not a Slurm cluster"):
        resolve("tiny", "local", nodes=1, spare_nodes=1, overrides=["cluster.max_nodes=4"])


def _events(job: str, attempt: int, bad: str | None) -> list:
    nodes = ["node1", "node2", "node3"]
    out: list = [
        BurninNode(job_id=job, attempt=attempt, node=n, ok=n != bad, checks=[{"check": "gemm"}])
        for n in nodes
    ]
    excluded = []
    if bad:
        excluded = [
            {
                "node": bad,
                "check": "gemm",
                "measured": 0.001,
                "expected": 0.01,
                "unit": "TFLOP/s",
                "reason": "gemm 0.001 TFLOP/s < 0.01 (0.5 x median 0.02)",
            }
        ]
    out.append(Burnin(job_id=job, attempt=attempt, action="train", nodes=nodes, excluded=excluded))
    # as the launcher reads them back
    return [parse_event({"ts": 1.0, "event": e.event, **e.payload()}) for e in out]


def test_the_store_keeps_what_burn_in_measured_once(user_env: Path) -> None:
    from olmoctl.core.launch.submit import prepare

    store = Store()
    spec = prepare(store, "tiny", "dev", nodes=2, name="b1", time_limit=None, overrides=[])
    with store.tx() as tx:
        tx.create_run(spec, state="PENDING")
    run = store.get_run("b1")
    events = _events("7", 0, "node2") + _events("7", 1, None)
    for _ in range(2):  # a second look at the same events changes nothing
        with store.tx() as tx:
            core_burnin.record(tx, run, events)
    (row,) = store.nodes("dev")
    assert (row.node, row.failures, row.last_check, row.unit) == ("node2", 1, "gemm", "TFLOP/s")
    assert (row.measured, row.expected) == (0.001, 0.01)
    checks = store.node_checks("dev")
    assert len(checks) == 6 and {c["ok"] for c in checks if c["node"] == "node2"} == {True, False}
    # and a later launch on the cluster keeps off it
    again = prepare(store, "tiny", "dev", nodes=2, name="b2", time_limit=None, overrides=[])
    assert again.exclude_nodes == ["node2"]


def test_nodes_shows_the_check_and_the_numbers(
    user_env: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    store = Store()
    with store.tx() as tx:
        tx.node_check(
            "dev",
            "node2",
            run_name="r",
            job_id="1",
            restart_index=0,
            ok=False,
            checks=[],
            failed={"check": "pair", "measured": 0.1, "expected": 0.2, "unit": "GB/s",
                    "reason": "pair 0.1 GB/s < 0.2 (0.5 x median 0.4)"},
        )  # fmt: skip
    store.close()
    res = cli("nodes", "--json")
    assert res.code == 0, res.err
    (row,) = json.loads(res.out)
    assert row["last_check"] == "pair" and row["measured"] == 0.1 and row["expected"] == 0.2
    table = cli("nodes")
    assert "pair" in table.out and "0.1 / >= 0.2 GB/s" in table.out
