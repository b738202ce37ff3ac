"""launch / status / logs / cancel against the real local Slurm cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import HANG_GUARD_S, VENV_BIN, DevCluster, Olmoctl, wait_for

pytestmark = pytest.mark.slurm


def test_two_node_tiny_run_completes(olmoctl: Olmoctl, dev_cluster: DevCluster) -> None:
    args = ["tiny", "--cluster", "dev", "--nodes", "2", "--name", "t2", "-o", olmoctl.root]
    # A site time limit for 2+ nodes below --time: refused before anything is recorded.
    policy = "cluster.time_limits=[{min_nodes: 2, max_time: '00:05:00'}]"
    refused = olmoctl("launch", *args, "--time", "00:10:00", "-o", policy)
    assert refused.returncode == 2 and "limit of 00:05:00 for 2+ nodes" in refused.stderr
    assert olmoctl.json("status") == []
    res = olmoctl("launch", *args)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # the launch checks pass without a warning (memory, time, space)
    name, word, job_id = res.stdout.split()[:3]
    assert name == "t2" and word == "job" and job_id.isdigit()
    dev_cluster.submitted.append(int(job_id))
    follow = subprocess.Popen(
        [VENV_BIN + "/olmoctl", "logs", "t2", "-f"], env=olmoctl.env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    done = wait_for(
        lambda: (d := olmoctl.run_state("t2"))["state"] in ("COMPLETED", "FAILED") and d,
        HANG_GUARD_S,
        "run t2 to end",
    )
    assert done["state"] == "COMPLETED", (done, olmoctl("logs", "t2").stdout[-3000:])
    assert done["step"] == done["total_steps"] == 40
    assert isinstance(done["loss"], float)
    assert len(done["losses"]) >= 10
    assert dev_cluster.sacct_state(int(job_id)) == "COMPLETED"
    assert done["attempt_list"][0]["node_list"] in ("node[1-2]", "node[2-3]", "node[1,3]")

    out, err = follow.communicate(timeout=HANG_GUARD_S)  # -f ends by itself when the job ends
    assert follow.returncode == 0, err
    assert "ended COMPLETED" in err
    assert "==> rank 0 <==" in out and "==> rank 1 <==" in out
    assert out.count("step 40/40") == 1  # rank 0 logs steps; nothing printed twice

    table = olmoctl.json("status")
    assert [r["name"] for r in table] == ["t2"] and table[0]["state"] == "COMPLETED"
    text = olmoctl("status")
    assert text.returncode == 0 and "t2" in text.stdout and "COMPLETED" in text.stdout

    logs = olmoctl("logs", "t2")
    assert logs.returncode == 0
    assert "==> rank 0 <==" in logs.stdout and "==> rank 1 <==" in logs.stdout
    only1 = olmoctl("logs", "t2", "--rank", "1")
    assert only1.returncode == 0 and "==> rank" not in only1.stdout and only1.stdout

    # The script Slurm ran is byte for byte what `render` prints for the same arguments.
    submitted = (olmoctl.runs / "t2" / "submitit" / f"{job_id}_submission.sh").read_text()
    rendered = olmoctl("render", *args)
    assert rendered.returncode == 0 and submitted == rendered.stdout
    assert (olmoctl.runs / "t2" / "scripts" / "attempt-1.sh").read_text() == submitted


def test_cancel_and_one_sacct_call(olmoctl: Olmoctl, dev_cluster: DevCluster, tmp_path) -> None:
    names = ["long-a", "long-b", "long-c"]
    jobs = []
    for n in names:
        res = olmoctl(
            "launch",
            "tiny",
            "-c",
            "dev",
            "--name",
            n,
            "-o",
            olmoctl.root,
            "-o",
            "train.max_steps=100000",
        )
        assert res.returncode == 0, res.stderr
        jobs.append(int(res.stdout.split()[2]))
    dev_cluster.submitted.extend(jobs)
    for j in jobs:
        dev_cluster.wait_running(j, timeout=HANG_GUARD_S)
    # sacct lags the controller by a moment: poll until accounting agrees.
    wait_for(
        lambda: {r["state"] for r in olmoctl.json("status")} == {"RUNNING"},
        HANG_GUARD_S,
        "status to show all three RUNNING",
    )

    # Count sacct calls through a wrapper placed first on PATH (the real sacct behind it).
    spy = tmp_path / "spy"
    spy.mkdir()
    calls = tmp_path / "sacct-calls"
    (spy / "sacct").write_text(
        f'#!/bin/bash\necho "$*" >> {calls}\nexec {dev_cluster.dir / "bin" / "sacct"} "$@"\n'
    )
    (spy / "sacct").chmod(0o755)
    env = dict(olmoctl.env, PATH=f"{spy}:{olmoctl.env['PATH']}")
    res = olmoctl("status", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert len(calls.read_text().splitlines()) == 1
    assert {r["state"] for r in json.loads(res.stdout)} == {"RUNNING"}
    assert len(json.loads(res.stdout)) == 3

    res = olmoctl("cancel", "long-b")
    assert res.returncode == 0, res.stderr
    assert dev_cluster.wait_job(jobs[1], timeout=HANG_GUARD_S) == "CANCELLED"
    d = olmoctl.run_state("long-b")
    assert d["state"] == "CANCELLED"
    assert d["attempt_list"][0]["reason"] == "cancelled by user"
    again = olmoctl("cancel", "long-b")
    assert again.returncode == 2 and "no live job" in again.stderr
    for n in ("long-a", "long-c"):
        assert olmoctl("cancel", n).returncode == 0


def test_unreachable_slurm_records_nothing(
    olmoctl: Olmoctl, dev_cluster: DevCluster, tmp_path: Path
) -> None:
    # A login node whose controller does not answer: real Slurm clients, a closed port.
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=gone\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\n"
        "MessageTimeout=2\nNodeName=n1 CPUs=1\nPartitionName=dev Nodes=n1\n"
    )
    env = dict(olmoctl.env, SLURM_CONF=str(conf), PATH=f"{VENV_BIN}:/usr/bin:/bin")
    res = olmoctl("launch", "tiny", "-c", "dev", "--name", "u", "-o", olmoctl.root, env=env)
    assert res.returncode == 2, res.stderr
    assert "cannot reach Slurm for cluster 'dev'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    # And a laptop with no Slurm at all.
    env = dict(olmoctl.env, PATH=VENV_BIN)
    res = olmoctl("launch", "tiny", "-c", "dev", "--name", "u", "-o", olmoctl.root, env=env)
    assert res.returncode == 2 and "sinfo not found" in res.stderr
    assert olmoctl.json("status") == []
    assert not (olmoctl.runs / "u").exists()
    dup = olmoctl("status", "nosuch")
    assert dup.returncode == 2 and "no run named 'nosuch'" in dup.stderr


def test_status_falls_back_to_squeue_without_accounting(
    olmoctl: Olmoctl, dev_cluster: DevCluster, tmp_path: Path
) -> None:
    res = olmoctl("launch", "tiny", "-c", "dev", "--name", "noacct", "-o", olmoctl.root,
                  "-o", "train.max_steps=100000")  # fmt: skip
    assert res.returncode == 0, res.stderr
    job = int(res.stdout.split()[2])
    dev_cluster.submitted.append(job)
    dev_cluster.wait_running(job, timeout=HANG_GUARD_S)
    # A site without slurmdbd: sacct answers as Slurm does when accounting is disabled.
    spy = tmp_path / "noacct"
    spy.mkdir()
    (spy / "sacct").write_text(
        "#!/bin/bash\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n"
    )
    (spy / "sacct").chmod(0o755)
    env = dict(olmoctl.env, PATH=f"{spy}:{olmoctl.env['PATH']}")
    res = olmoctl("status", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert "accounting unavailable" in res.stderr and "used squeue" in res.stderr
    assert [r["state"] for r in json.loads(res.stdout)] == ["RUNNING"]
    assert olmoctl("cancel", "noacct").returncode == 0
