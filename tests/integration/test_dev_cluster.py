"""The local Slurm cluster itself (`scripts/dev-cluster`): jobs, accounting and fault handles.

Each test waits on Slurm's own answers (squeue, sacct, scontrol) with a deadline; a job that
must stay running until the test says so waits for a file instead of sleeping a guessed time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import HANG_GUARD_S, DevCluster, wait_for

pytestmark = pytest.mark.slurm

# SlurmdTimeout=5, MessageTimeout=5: a crashed or cut-off node is DOWN and its job NODE_FAIL
# about 12-16 s later (measured); the tests allow twice that.
NODE_DOWN_BOUND_S = 30


def hold(go: Path) -> str:
    """Shell that keeps a job step running until the test creates `go`."""
    return f"while [ ! -e {go} ]; do sleep 0.2; done"


def output_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


def test_three_node_job_runs_on_three_distinct_nodes(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = dev_cluster.sbatch("-N", "3", "-o", str(out), "--wrap", "srun hostname")
    assert dev_cluster.wait_job(job) == "COMPLETED", out.read_text()
    assert sorted(out.read_text().split()) == ["node1", "node2", "node3"]
    # accounting lags the controller a moment: poll until the row is complete
    wait_for(
        lambda: (
            dev_cluster.sacct(job)
            == [
                {
                    "JobID": str(job),
                    "State": "COMPLETED",
                    "NodeList": "node[1-3]",
                    "ExitCode": "0:0",
                }
            ]
        ),
        20,
        "sacct to show the job COMPLETED on node[1-3]",
    )


def test_jobs_see_gpus_hostnames_and_the_submitting_environment(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    out, script = tmp_path / "out", tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "# what olmoctl's scripts do: rank 0's host is the first node of the allocation\n"
        'olmoctl_hostnames="$(scontrol show hostnames "$SLURM_JOB_NODELIST")"\n'
        "MASTER_ADDR=\"${olmoctl_hostnames%%$'\\n'*}\"\n"
        "export MASTER_ADDR\n"
        "srun bash -c 'echo \"$(hostname) gpus=$SLURM_GPUS_ON_NODE cuda=$CUDA_VISIBLE_DEVICES"
        " marker=$OLMOCTL_TEST_MARKER master=$(getent hosts $MASTER_ADDR | cut -d\\  -f1)"
        " uid=$(id -u)\"'\n"
    )
    env = dict(dev_cluster.env, OLMOCTL_TEST_MARKER="from-the-submitter")
    p = dev_cluster.run(
        ["sbatch", "--parsable", "-N", "2", "--gpus-per-node=8", "-o", str(out), str(script)],
        env=env,
        check=True,
    )
    job = int(p.stdout.strip())
    dev_cluster.submitted.append(job)
    assert dev_cluster.wait_job(job) == "COMPLETED", out.read_text()
    lines = sorted(out.read_text().splitlines())
    assert len(lines) == 2, lines
    for node, line in zip(["node1", "node2"], lines, strict=True):
        assert line == (
            f"{node} gpus=8 cuda=0,1,2,3,4,5,6,7 marker=from-the-submitter master=10.77.0.11 uid=0"
        )


def test_crashed_node_fails_the_job_and_revive_brings_it_back(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = dev_cluster.sbatch("-N", "3", "--no-requeue", "-o", str(out), "--wrap", "srun sleep 600")
    dev_cluster.wait_running(job)
    wait_for(
        lambda: (
            dev_cluster.squeue_state(job) == "RUNNING"
            and dev_cluster.node_state("node2") in ("ALLOCATED", "MIXED")
        ),
        HANG_GUARD_S,
        "node2 to run the job",
    )

    t0 = time.monotonic()
    dev_cluster.kill_node("node2")
    state = dev_cluster.wait_job(job, timeout=NODE_DOWN_BOUND_S + 15)
    wait_for(
        lambda: "DOWN" in dev_cluster.node_state("node2"), NODE_DOWN_BOUND_S, "node2 to be DOWN"
    )
    elapsed = time.monotonic() - t0
    assert state == "NODE_FAIL"
    assert elapsed < NODE_DOWN_BOUND_S, f"node2 DOWN and job NODE_FAIL after {elapsed:.1f}s"
    assert "DOWN" in dev_cluster.node_state("node2")
    assert "Node failure on node2" in out.read_text()

    dev_cluster.revive_node("node2")
    wait_for(lambda: dev_cluster.node_state("node2") == "IDLE", HANG_GUARD_S, "node2 to be IDLE")


def test_exclude_keeps_a_job_off_a_node(dev_cluster: DevCluster, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = dev_cluster.sbatch(
        "-N", "2", "--exclude=node2", "-o", str(out), "--wrap", "srun hostname"
    )
    assert dev_cluster.wait_job(job) == "COMPLETED", out.read_text()
    assert sorted(out.read_text().split()) == ["node1", "node3"]


def test_restart_controller_keeps_queued_and_running_jobs(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    out, go = tmp_path / "out", tmp_path / "go"
    running = dev_cluster.sbatch(
        "-N", "1", "-o", str(out), "--wrap", f"echo started; {hold(go)}; echo finished"
    )
    queued = dev_cluster.sbatch("-N", "1", "--begin=now+3600", "--wrap", "true")
    dev_cluster.wait_running(running)
    wait_for(lambda: output_has(out, "started"), HANG_GUARD_S, "the running job's first line")
    assert dev_cluster.squeue_state(queued) == "PENDING"

    dev_cluster.restart_controller()

    assert dev_cluster.squeue_state(running) == "RUNNING"
    assert dev_cluster.squeue_state(queued) == "PENDING"
    assert dev_cluster.job_field(queued, "Reason") == "BeginTime"
    go.touch()
    assert dev_cluster.wait_job(running) == "COMPLETED"
    assert out.read_text().split() == ["started", "finished"]
    dev_cluster.run(["scancel", str(queued)], check=True)
    assert dev_cluster.wait_job(queued) == "CANCELLED"


def test_signal_arrives_before_the_time_limit(dev_cluster: DevCluster, tmp_path: Path) -> None:
    # --signal=USR2@55 with a 1-minute limit: the controller checks time limits every few
    # tens of seconds, so the signal comes somewhere in the first ~35 s, well before the kill.
    out = tmp_path / "out"
    step = (
        'trap "echo got USR2 after \\${SECONDS}s; exit 0" USR2; echo ready; '
        "while :; do sleep 0.2; done"
    )
    job = dev_cluster.sbatch(
        "-N",
        "1",
        "--time=1",
        "--signal=USR2@55",
        "-o",
        str(out),
        "--wrap",
        f"srun bash -c '{step}'",
    )
    state = dev_cluster.wait_job(job, timeout=HANG_GUARD_S)
    text = out.read_text()
    assert "got USR2" in text, text
    assert state == "COMPLETED", f"{state}: the trap should end the job before the limit\n{text}"


def test_requeue_restarts_a_running_job(dev_cluster: DevCluster, tmp_path: Path) -> None:
    out, go = tmp_path / "out", tmp_path / "go"
    job = dev_cluster.sbatch(
        "-N",
        "1",
        "--open-mode=append",
        "-o",
        str(out),
        "--wrap",
        f'echo "restart=${{SLURM_RESTART_COUNT:-0}}"; {hold(go)}',
    )
    dev_cluster.wait_running(job)
    wait_for(lambda: output_has(out, "restart=0"), HANG_GUARD_S, "the first run to start")

    dev_cluster.run(["scontrol", "requeue", str(job)], check=True)
    # held for cred_expire (10 s) + 1 s after the requeue, then runs again
    wait_for(lambda: output_has(out, "restart=1"), HANG_GUARD_S, "the job to run again")
    assert dev_cluster.job_field(job, "Restarts") == "1"
    go.touch()
    assert dev_cluster.wait_job(job) == "COMPLETED"
    runs = [x for x in out.read_text().splitlines() if x.startswith("restart=")]
    assert runs == ["restart=0", "restart=1"]
    assert "DUE TO JOB REQUEUE" in out.read_text()


def test_partitioned_node_goes_down_and_heal_brings_it_back(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    job = dev_cluster.sbatch(
        "-N",
        "1",
        "-w",
        "node3",
        "--no-requeue",
        "-o",
        str(tmp_path / "out"),
        "--wrap",
        "srun sleep 600",
    )
    dev_cluster.wait_running(job)
    t0 = time.monotonic()
    dev_cluster.partition_node("node3")
    assert dev_cluster.wait_job(job, timeout=NODE_DOWN_BOUND_S + 15) == "NODE_FAIL"
    wait_for(
        lambda: "DOWN" in dev_cluster.node_state("node3"), NODE_DOWN_BOUND_S, "node3 to be DOWN"
    )
    assert time.monotonic() - t0 < NODE_DOWN_BOUND_S
    dev_cluster.heal_node("node3")
    wait_for(lambda: dev_cluster.node_state("node3") == "IDLE", HANG_GUARD_S, "node3 to be IDLE")


def test_drained_node_takes_no_new_jobs(dev_cluster: DevCluster, tmp_path: Path) -> None:
    dev_cluster.drain("node1")
    assert "DRAIN" in dev_cluster.node_state("node1")
    job = dev_cluster.sbatch("-N", "3", "-o", str(tmp_path / "out"), "--wrap", "true")
    wait_for(
        lambda: dev_cluster.job_field(job, "Reason") not in ("", "None"),
        HANG_GUARD_S,
        "the scheduler to look at the job",
    )
    assert dev_cluster.squeue_state(job) == "PENDING"
    dev_cluster.undrain("node1")
    assert dev_cluster.wait_job(job) == "COMPLETED"
