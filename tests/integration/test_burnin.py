"""Burn-in on the real local Slurm (issue 17 items 1, 2, 5): node2 slowed for real (to 5% of
a CPU: its processes in a cgroup with a CPU quota, `scripts/dev-cluster slow-node`), tiny on
2 nodes.
With a spare node, training starts on the two healthy nodes in the same job and the store
says why node2 was left out; without one, the job requeues itself once without node2 and
completes with losses identical (==) to an undisturbed run.

These tests slow a node: run them under the EXCLUSIVE cluster lock. The node is restored in
a `finally` (and by the suite's restore after every test)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import HANG_GUARD_S, DevCluster, Olmoctl, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.burnin]
SLOW = "node2"


def _events(run_dir: Path, kind: str) -> list[dict]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [e for line in path.read_text().splitlines() if (e := json.loads(line))["event"] == kind]


def _losses(run_dir: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in _events(run_dir, "step")}


@pytest.fixture(scope="module")
def reference(dev_cluster: DevCluster, tmp_path_factory) -> dict[int, float]:
    o = Olmoctl(dev_cluster, tmp_path_factory.mktemp("reference"))
    res = o("launch", "tiny", "-c", "dev", "-N", "2", "--name", "ref", "-o", o.root, "--wait")
    assert res.returncode == 0, res.stderr
    ref = _losses(o.runs / "ref")
    assert sorted(ref) == list(range(1, 41))
    return ref


@contextlib.contextmanager
def slowed(cluster: DevCluster, node: str) -> Iterator[None]:
    cluster.script("slow-node", node, "--cpu", "5%")
    try:
        yield
    finally:
        cluster.script("unslow-node", node)


def _launch(o: Olmoctl, cluster: DevCluster, name: str, *extra: str) -> Path:
    res = o("launch", "tiny", "-c", "dev", "-N", "2", "--name", name, "-o", o.root, *extra)
    assert res.returncode == 0, res.stderr
    cluster.submitted.append(int(res.stdout.split()[2]))
    return o.runs / name


def _wait_completed(o: Olmoctl, name: str) -> dict:
    def done() -> dict | None:
        d = o.json("status", name)
        assert d["state"] not in ("FAILED", "CODE_ERROR", "CANCELLED", "UNKNOWN"), d
        return d if d["state"] == "COMPLETED" else None

    return wait_for(done, HANG_GUARD_S, f"{name} to complete", interval=1)


def test_a_spare_node_takes_the_slowed_nodes_place(
    olmoctl: Olmoctl, dev_cluster: DevCluster, reference: dict[int, float]
) -> None:
    with slowed(dev_cluster, SLOW):
        run_dir = _launch(olmoctl, dev_cluster, "spare", "--spare-nodes", "1")
        (verdict,) = wait_for(
            lambda: _events(run_dir, "burnin"), HANG_GUARD_S, "the burn-in's verdict"
        )
    assert verdict["nodes"] == ["node1", "node2", "node3"]
    assert verdict["action"] == "train" and verdict["use"] == ["node1", "node3"], verdict
    (left_out,) = verdict["excluded"]
    assert left_out["node"] == SLOW and left_out["measured"] < left_out["expected"]

    detail = _wait_completed(olmoctl, "spare")
    (attempt,) = detail["attempt_list"]  # one job, no requeue: the spare took node2's place
    assert attempt["node_list"] == "node[1-3]"
    (started,) = _events(run_dir, "started")
    assert started["nodes"] == ["node1", "node3"] and started["world_size"] == 2
    assert _losses(run_dir) == reference
    # the store says why node2 was left out: which check, measured vs expected
    (row,) = [r for r in olmoctl.json("nodes") if r["node"] == SLOW]
    assert row["failures"] == 1 and row["last_check"] == left_out["check"]
    assert row["measured"] == pytest.approx(left_out["measured"])
    assert row["expected"] == pytest.approx(left_out["expected"])
    assert row["last_reason"] == left_out["reason"]
    assert detail["burnin"][0]["use"] == ["node1", "node3"]


def test_without_spares_the_job_requeues_itself_once_without_the_slowed_node(
    olmoctl: Olmoctl, dev_cluster: DevCluster, reference: dict[int, float]
) -> None:
    with slowed(dev_cluster, SLOW):
        run_dir = _launch(olmoctl, dev_cluster, "requeue")
        (first,) = wait_for(
            lambda: _events(run_dir, "burnin"), HANG_GUARD_S, "the first burn-in's verdict"
        )
    assert first["nodes"] == ["node1", SLOW] and first["action"] == "requeue", first
    assert [e["node"] for e in first["excluded"]] == [SLOW]

    detail = _wait_completed(olmoctl, "requeue")
    attempts = detail["attempt_list"]
    assert [a["restart_index"] for a in attempts] == [0, 1], attempts
    assert attempts[0]["klass"] == "BURNIN" and SLOW in attempts[0]["reason"], attempts[0]
    assert attempts[1]["klass"] == "COMPLETED" and attempts[1]["node_list"] == "node[1,3]"
    burnins = _events(run_dir, "burnin")
    assert [b["action"] for b in burnins] == ["requeue", "train"]  # one requeue, then train
    assert burnins[1]["nodes"] == ["node1", "node3"]
    assert _losses(run_dir) == reference
    (row,) = [r for r in olmoctl.json("nodes") if r["node"] == SLOW]
    assert row["failures"] == 1 and row["last_check"] is not None


def test_a_node_without_the_filesystem_is_judged_at_once(
    olmoctl: Olmoctl, dev_cluster: DevCluster, reference: dict[int, float]
) -> None:
    """node3 without the runs folder (an empty folder in its place, as that node sees it):
    its burn-in task ends at start. srun says so, and the burn-in leaves node3 out at once
    (not after start_timeout_s: 180 s) and trains on the spare."""
    olmoctl.runs.mkdir(parents=True, exist_ok=True)
    dev_cluster.script("fail-node-check", "node3", "--path", str(olmoctl.runs), "--hide")
    try:
        run = _launch(olmoctl, dev_cluster, "nofs", "--spare-nodes", "1")
        _wait_completed(olmoctl, "nofs")
    finally:
        dev_cluster.script("unfail-node-check", "node3")
    (burnin,) = _events(run, "burnin")
    assert "node3" not in burnin["use"], burnin
    (out,) = [e for e in burnin["excluded"] if e["node"] == "node3"]
    assert "ended before reporting" in out["reason"], out
    print(f"burn-in with a node without its filesystem: {burnin['seconds']:.1f} s")
    assert burnin["seconds"] < 90, burnin  # a hang guard against waiting the start timeout
    assert _losses(run) == reference
