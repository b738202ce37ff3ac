"""The burn-in job for real: ranks as processes with srun's environment, one per "node"
(SLURMD_NODENAME), meeting on the burn-in's TCPStore, measuring with torch (GEMM, memory,
filesystem, all-reduce over gloo, neighbour pairs) and writing events and the verdict file.
A node whose task never starts is named, and training goes to the others."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from olmoctl.schemas import contract
from olmoctl.schemas.burnin import parse_verdict
from tests.train.helpers import PY, REPO, _base_env, free_port, logs, save_spec, tiny, wait_all


def _spec(run_dir: Path, nodes: int, spare: int) -> Path:
    cluster = {
        "name": "testbox",
        "scheduler": "slurm",
        "vendor": "cpu",
        "max_nodes": 8,
        "distributed_backend": "gloo",
        "runs_root": str(run_dir.parent),
        # short limits: a task that does not start is given up on in seconds
        "burnin": {"start_timeout_s": 20, "check_timeout_s": 60, "measure_s": 0.3},
    }
    return save_spec(run_dir, recipe=tiny(), cluster=cluster, nodes=nodes, spare_nodes=spare)


def _burnin(
    spec: Path, nodes: list[str], ranks: list[int], log_dir: Path, extra: dict | None = None
) -> str:
    """Start the burn-in's tasks `ranks` of one task per node in `nodes`; its job id."""
    log_dir.mkdir(parents=True, exist_ok=True)
    job_id = str(free_port(40000, 60000) - contract.BURNIN_PORT_BASE)
    procs = []
    for rank in ranks:
        env = _base_env(
            {
                "SLURM_JOB_ID": job_id,
                "SLURM_PROCID": str(rank),
                "SLURM_LOCALID": "0",
                "SLURM_NTASKS": str(len(nodes)),
                "SLURM_STEP_NUM_NODES": str(len(nodes)),
                "SLURM_JOB_NODELIST": ",".join(nodes),
                "SLURMD_NODENAME": nodes[rank],
                "MASTER_ADDR": "127.0.0.1",
                "OMP_NUM_THREADS": "1",
                **(extra or {}),
            }
        )
        with open(log_dir / f"rank{rank}.log", "ab") as out:
            procs.append(
                subprocess.Popen(
                    [PY, "-m", "olmoctl.train.burnin", str(spec)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                    start_new_session=True,
                )
            )
    assert wait_all(procs) == [0] * len(ranks), logs(log_dir)
    return job_id


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / contract.EVENTS_FILE).read_text().splitlines()]


def test_a_node_that_never_starts_is_left_out_and_a_spare_takes_its_place(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "runs" / "bi"
    spec = _spec(run_dir, nodes=2, spare=1)
    nodes = ["node1", "node2", "node3"]
    job = _burnin(spec, nodes, [0, 2], tmp_path / "logs")  # node2's task never starts

    verdict = (run_dir / contract.BURNIN_DIR / contract.verdict_name(job, 0)).read_text()
    assert parse_verdict(verdict) == ("train", ["node1", "node3"], ["node2"]), verdict
    evs = _events(run_dir)
    per_node = {e["node"]: e for e in evs if e["event"] == "burnin_node"}
    assert set(per_node) == set(nodes) and per_node["node2"]["ok"] is False
    checks = {c["check"]: c for c in per_node["node1"]["checks"]}
    assert set(checks) == {"gemm", "memory", "filesystem", "pair"}
    assert all(c["ok"] and c["value"] > 0 for c in checks.values()), checks
    (final,) = [e for e in evs if e["event"] == "burnin"]
    assert final["action"] == "train" and final["use"] == ["node1", "node3"]
    assert final["excluded"][0]["node"] == "node2"
    assert "did not start within 20 s" in final["excluded"][0]["reason"]
    assert final["busbw_gbps"] > 0  # the all-reduce among the two that came
    assert final["job_id"] == job and final["attempt"] == 0
    # the check's scratch file is gone again
    assert [p.name for p in (run_dir / contract.BURNIN_DIR).iterdir()] == [
        contract.verdict_name(job, 0)
    ]


def test_without_a_spare_the_verdict_is_one_requeue_without_the_node(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "bi"
    spec = _spec(run_dir, nodes=3, spare=0)
    job = _burnin(spec, ["node1", "node2", "node3"], [0, 1], tmp_path / "logs")
    verdict = (run_dir / contract.BURNIN_DIR / contract.verdict_name(job, 0)).read_text()
    assert parse_verdict(verdict) == ("requeue", [], ["node3"]), verdict


def test_every_neighbour_pair_of_four_nodes_is_measured(tmp_path: Path) -> None:
    """Two pairs per round: each pair's group is its own (one prefix per round made ranks of
    different pairs meet as one group, and most pairs failed, from 4 nodes on)."""
    run_dir = tmp_path / "runs" / "bi"
    spec = _spec(run_dir, nodes=4, spare=0)
    nodes = ["node1", "node2", "node3", "node4"]
    job = _burnin(spec, nodes, [0, 1, 2, 3], tmp_path / "logs")
    verdict = (run_dir / contract.BURNIN_DIR / contract.verdict_name(job, 0)).read_text()
    assert parse_verdict(verdict)[0] == "train", (verdict, logs(tmp_path / "logs"))
    per_node = {e["node"]: e for e in _events(run_dir) if e["event"] == "burnin_node"}
    for node in nodes:
        (pair,) = [c for c in per_node[node]["checks"] if c["check"] == "pair"]
        assert pair["ok"] and pair["value"] > 0, (node, pair)


def test_a_task_srun_saw_end_is_judged_without_waiting_the_start_timeout(tmp_path: Path) -> None:
    """srun's line in the batch log names node2's task as ended: rank 0 stops waiting for it
    at once (not after start_timeout_s) and gives srun's words as the reason."""
    import time

    run_dir = tmp_path / "runs" / "bi"
    spec = _spec(run_dir, nodes=2, spare=1)
    batch = tmp_path / "slurm-1.out"
    batch.write_text("an earlier line\n")
    at = batch.stat().st_size
    with open(batch, "a") as f:
        f.write("srun: error: node2: task 1: Exited with exit code 2\n")
    t0 = time.monotonic()
    extra = {"OLMOCTL_BATCH_LOG": str(batch), "OLMOCTL_BATCH_LOG_FROM": str(at)}
    job = _burnin(spec, ["node1", "node2", "node3"], [0, 2], tmp_path / "logs", extra)
    took = time.monotonic() - t0
    verdict = (run_dir / contract.BURNIN_DIR / contract.verdict_name(job, 0)).read_text()
    assert parse_verdict(verdict) == ("train", ["node1", "node3"], ["node2"]), verdict
    (final,) = [e for e in _events(run_dir) if e["event"] == "burnin"]
    assert "node2: task 1: Exited with exit code 2" in final["excluded"][0]["reason"]
    assert "did not start" not in final["excluded"][0]["reason"]
    print(f"burn-in with a task srun saw end: {took:.1f} s (start timeout 20 s)")
