"""`launch --wait` exit statuses against the real cluster (README's table): 3 when the job is
cancelled under it, 4 when Slurm stops it at its time limit. (0 and 1: test_local.py.)"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import HANG_GUARD_S, VENV_BIN, DevCluster, Olmoctl, wait_for

pytestmark = pytest.mark.slurm


def _waiting_launch(olmoctl: Olmoctl, name: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [VENV_BIN + "/olmoctl", "launch", "tiny", "-c", "dev", "--wait", "--name", name,
         "-o", olmoctl.root, "-o", "train.max_steps=100000", *args],
        env=olmoctl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _job_id(olmoctl: Olmoctl, name: str) -> int:
    def running() -> int | None:
        res = olmoctl("status", name, "--json")
        if res.returncode != 0:
            return None  # not recorded yet
        d = json.loads(res.stdout)
        return int(d["job_id"]) if d.get("job_id") and d.get("state") == "RUNNING" else None

    return wait_for(running, HANG_GUARD_S, f"{name} to be RUNNING")


def test_wait_exits_3_when_the_job_is_cancelled(olmoctl: Olmoctl, dev_cluster: DevCluster) -> None:
    proc = _waiting_launch(olmoctl, "wait-cancel")
    try:
        job = _job_id(olmoctl, "wait-cancel")
        dev_cluster.submitted.append(job)
        dev_cluster.run(
            ["scancel", str(job)], check=True
        )  # someone else (an admin, a script) cancels it
        _out, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert olmoctl.run_state("wait-cancel")["state"] == "CANCELLED"


def test_wait_exits_4_when_slurm_stops_the_job_at_its_time_limit(
    olmoctl: Olmoctl, dev_cluster: DevCluster
) -> None:
    # No USR2 before the limit (signal_before_s=0): Slurm itself ends the job, TIMEOUT.
    proc = _waiting_launch(olmoctl, "wait-timeout", "--time", "00:01:00",
                           "-o", "cluster.signal_before_s=0")  # fmt: skip
    try:
        dev_cluster.submitted.append(_job_id(olmoctl, "wait-timeout"))
        _out, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        proc.kill()
    assert proc.returncode == 4, err
    state = olmoctl.run_state("wait-timeout")
    assert state["attempt_list"][-1]["klass"] == "TIMEOUT", state
    assert "olmoctl resume wait-timeout" in err, err


def test_wait_exits_1_at_once_when_the_job_fails(
    olmoctl: Olmoctl, dev_cluster: DevCluster, tmp_path
) -> None:
    """A job that fails at its start: `--wait` sees the end at once (squeue has it before
    sacct does), not minutes later, and exits 1 (README's table)."""
    import time

    missing = f"data.paths=[{tmp_path / 'missing.npy'}]"  # valid config; the job itself fails
    start = time.monotonic()
    res = olmoctl("launch", "tiny", "-c", "dev", "--wait", "--name", "wait-fail", "-o",
                  olmoctl.root, "-o", missing, "-o", "cluster.burnin.enabled=false")  # fmt: skip
    took = time.monotonic() - start
    first = res.stdout.split()
    if len(first) >= 3 and first[2].isdigit():
        dev_cluster.submitted.append(int(first[2]))
    assert res.returncode == 1, res.stderr
    assert "wait-fail: ended" in res.stderr and "(exit status 1)" in res.stderr
    assert took < 120, f"--wait took {took:.0f} s to see a job that failed at its start"
