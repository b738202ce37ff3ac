"""`--cluster local`: no Slurm at all, submitit's LocalExecutor runs the job as local
processes; launch, status, logs and cancel work the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import HANG_GUARD_S, wait_for

VENV_BIN = str(Path(sys.executable).parent)


def _olmoctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VENV_BIN + "/olmoctl", *args], env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)  # fmt: skip


def test_local_launch_status_logs_cancel(tmp_path: Path) -> None:
    env = dict(os.environ, OLMOCTL_STATE_DIR=str(tmp_path / "state"),
               PATH=f"{VENV_BIN}:/usr/bin:/bin")  # fmt: skip
    root = f"cluster.runs_root={tmp_path / 'runs'}"
    try:
        _launch_status_logs_cancel(env, root)
    finally:  # never leave a local job behind
        for name in ("l1", "l2"):
            _olmoctl(env, "cancel", name)


def _launch_status_logs_cancel(env: dict[str, str], root: str) -> None:
    res = _olmoctl(env, "launch", "tiny", "-c", "local", "--name", "l1", "-o", root,
                   "-o", "train.max_steps=10")  # fmt: skip
    assert res.returncode == 0, res.stderr

    def state(name: str) -> dict:
        out = _olmoctl(env, "status", name, "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    done = wait_for(lambda: (d := state("l1"))["state"] in ("COMPLETED", "FAILED") and d,
                    HANG_GUARD_S,
                    "the local run to end")  # fmt: skip
    assert done["state"] == "COMPLETED", _olmoctl(env, "logs", "l1").stdout[-2000:]
    assert done["step"] == 10
    logs = _olmoctl(env, "logs", "l1")
    assert logs.returncode == 0 and "step 10/10" in logs.stdout

    res = _olmoctl(env, "launch", "tiny", "-c", "local", "--name", "l2", "-o", root,
                   "-o", "train.max_steps=100000")  # fmt: skip
    assert res.returncode == 0, res.stderr
    wait_for(lambda: state("l2")["step"], HANG_GUARD_S, "the second run to make a step")
    assert _olmoctl(env, "cancel", "l2").returncode == 0
    wait_for(lambda: state("l2")["state"] == "CANCELLED", HANG_GUARD_S, "l2 to be cancelled")
    pid = int(state("l2")["job_id"])
    wait_for(lambda: not Path(f"/proc/{pid}").exists()
             or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3],
             HANG_GUARD_S, "the local job's processes to exit")  # fmt: skip


def test_wait_exit_status_is_the_runs_outcome(tmp_path: Path) -> None:
    """`launch --wait`: 0 when the run COMPLETED, 1 when it failed (README's table)."""
    env = dict(os.environ, OLMOCTL_STATE_DIR=str(tmp_path / "state"),
               PATH=f"{VENV_BIN}:/usr/bin:/bin")  # fmt: skip
    root = f"cluster.runs_root={tmp_path / 'runs'}"
    try:
        ok = _olmoctl(env, "launch", "tiny", "-c", "local", "--wait", "--name", "w-ok",
                      "-o", root, "-o", "train.max_steps=3")  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        # Valid config, but its data file does not exist: the job itself fails.
        bad = _olmoctl(env, "launch", "tiny", "-c", "local", "--wait", "--name", "w-bad",
                       "-o", root, "-o", "train.max_steps=3",
                       "-o", f"data.paths=[{tmp_path / 'missing.npy'}]")  # fmt: skip
        assert bad.returncode == 1, bad.stderr
        assert "w-bad: ended" in bad.stderr and "(exit status 1)" in bad.stderr
    finally:
        for name in ("w-ok", "w-bad"):
            _olmoctl(env, "cancel", name)


def test_a_local_job_killed_by_a_signal_is_a_rank_killed_and_watch_resumes_it(
    tmp_path: Path,
) -> None:
    """kill -9 of the training process (as a user or the OOM killer would): the attempt is
    RANK_KILLED with its start and end times (not UNKNOWN "FAILED exit None"), and `watch`
    resumes it to COMPLETED."""
    gate = tmp_path / "runs" / "k" / "fault.gate"
    faults = json.dumps({"pause_after_step": 3, "gate": str(gate)})
    env = dict(os.environ, OLMOCTL_STATE_DIR=str(tmp_path / "state"),
               PATH=f"{VENV_BIN}:/usr/bin:/bin", OLMOCTL_TRAIN_FAULTS=faults)  # fmt: skip
    root = f"cluster.runs_root={tmp_path / 'runs'}"
    try:
        res = _olmoctl(env, "launch", "tiny", "-c", "local", "--name", "k", "-o", root,
                       "-o", "train.max_steps=6", "-o", "checkpoint.interval_steps=2")  # fmt: skip
        assert res.returncode == 0, res.stderr
        waiting = wait_for(lambda: list(gate.parent.glob("fault.gate.waiting.*")),
                           HANG_GUARD_S, "the job to pause after step 3")  # fmt: skip
        gate.write_text("go")  # the resumed job must not pause again
        os.kill(int(waiting[0].read_text()), 9)
        attempt = wait_for(
            lambda: (a := json.loads(_olmoctl(env, "status", "k", "--json").stdout)
                     ["attempt_list"][0])["klass"] and a,
            HANG_GUARD_S, "the killed job to be classified",
        )  # fmt: skip
        assert attempt["klass"] == "RANK_KILLED", attempt
        assert "killed by a signal" in attempt["reason"]
        assert attempt["started_at"] and attempt["ended_at"] >= attempt["started_at"]
        watch = subprocess.run(
            [VENV_BIN + "/olmoctl", "watch", "k", "--until-done", "--interval", "1",
             "--backoff", "1"], env=env, capture_output=True, text=True, timeout=HANG_GUARD_S,
        )  # fmt: skip
        assert watch.returncode == 0, watch.stderr
        detail = json.loads(_olmoctl(env, "status", "k", "--json").stdout)
        assert [a["klass"] for a in detail["attempt_list"]] == ["RANK_KILLED", "COMPLETED"]
    finally:
        _olmoctl(env, "cancel", "k")
