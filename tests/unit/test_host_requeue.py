"""The batch script's host-side stop and requeue (templates/sbatch.sh.j2), run under bash
with stub srun/scontrol and a stub rank: USR2 to the script reaches the rank, a rank that
saved (exit 42, or rank 0's mark when srun killed the slower ranks) is requeued from the
host, and nothing is requeued when Slurm itself ends the job (TERM) or the budget is spent.
The real thing: tests/integration/test_faults.py (bare and container profiles)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from olmoctl.core.launch import specs
from olmoctl.core.launch.render import render
from olmoctl.schemas.contract import REQUEUE_READY

HANG_GUARD_S = 60  # the script runs in well under a second; this only stops a hang

SRUN = 'while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n'
SCONTROL = """[ "$1 $2" = "show hostnames" ] && { echo "$3"; exit 0; }  # MASTER_ADDR's
echo "$*" >>"$STUB_DIR/scontrol.log"
if [ "$1" = -o ] && [ "$2" = show ]; then
  echo "JobId=$4 JobName=x ExcNodeList=${STUB_EXCLUDED:-(null)} Partition=dev"
fi
"""
# The rank: says it is ready, then on USR2/TERM records the signal and stops the way
# TASK_MODE says (42: saved and exited 42; mark-killed: rank 0's mark, then killed the way
# srun kills the slower ranks); no-handler: dies of the signal; complete: exits 0 at once.
RANK = """[ "${TASK_MODE:-}" = complete ] && exit 0
stop() {
  echo "$1" >>"$STUB_DIR/rank.log"
  if [ "$TASK_MODE" = mark-killed ]; then
    echo '{"step": 3}' >"$OLMOCTL_RUN_DIR/requeue-ready"
    kill -9 $$
  fi
  exit 42
}
if [ "$TASK_MODE" != no-handler ]; then
  trap 'stop USR2' USR2
  trap 'stop TERM' TERM
fi
echo $$ >"$STUB_DIR/rank.pid"
while :; do sleep 0.05; done
"""


class Batch:
    def __init__(self, tmp: Path, **env: str) -> None:
        self.dir = tmp / "stubs"
        (self.dir / "bin").mkdir(parents=True)
        for name, body in {"srun": SRUN, "scontrol": SCONTROL, "python": RANK}.items():
            path = self.dir / "bin" / name
            path.write_text("#!/bin/bash\n" + body)
            path.chmod(0o755)
        no_burnin = "cluster.burnin.enabled=false"  # its own step would run the stub rank
        overrides = [f"cluster.runs_root={tmp}/runs", no_burnin]
        spec = specs.resolve("tiny", "dev", nodes=2, overrides=overrides)
        self.run_dir = Path(spec.run_dir)
        script = tmp / "job.sh"
        script.write_text(render(spec))
        env = {
            "PATH": f"{self.dir / 'bin'}:/usr/bin:/bin",
            "STUB_DIR": str(self.dir),
            "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NODELIST": "node1",
            **env,
        }
        self.proc = subprocess.Popen(
            ["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def rank_pid(self) -> int:
        pid_file = self.dir / "rank.pid"
        deadline = time.monotonic() + HANG_GUARD_S
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the rank never started"
            time.sleep(0.02)
        return int(pid_file.read_text())

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=HANG_GUARD_S)
        return self.proc.returncode, out, err

    def log(self, name: str) -> list[str]:
        path = self.dir / name
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def batch(tmp_path: Path, user_env: Path):
    made: list[Batch] = []

    def make(**env: str) -> Batch:
        made.append(Batch(tmp_path, **env))
        return made[-1]

    yield make
    for b in made:
        if b.proc.poll() is None:
            b.proc.kill()


def test_usr2_reaches_the_rank_and_the_job_is_requeued_from_the_host(batch) -> None:
    b = batch(TASK_MODE="42")
    b.rank_pid()
    os.kill(b.proc.pid, signal.SIGUSR2)
    code, out, err = b.finish()
    assert b.log("rank.log") == ["USR2"]
    assert b.log("scontrol.log") == ["requeue 4242"]
    assert code == 0, err
    assert "job 4242 requeued from" in out


def test_rank_zero_mark_counts_when_srun_killed_the_slower_ranks(batch) -> None:
    b = batch(TASK_MODE="mark-killed")
    b.rank_pid()
    os.kill(b.proc.pid, signal.SIGUSR2)
    code, _, err = b.finish()
    assert b.log("scontrol.log") == ["requeue 4242"], err
    assert code == 0
    assert (b.run_dir / REQUEUE_READY).exists()  # what counted (the next start removes it)


def test_a_stale_mark_from_an_earlier_attempt_does_not_count(batch, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "tiny-dev"
    run_dir.mkdir(parents=True)
    (run_dir / REQUEUE_READY).write_text("{}\n")
    b = batch(TASK_MODE="complete")
    code, _, err = b.finish()
    assert b.run_dir == run_dir
    assert (code, b.log("scontrol.log")) == (0, []), err


def test_term_is_slurms_own_ending_and_nothing_is_requeued(batch) -> None:
    b = batch(TASK_MODE="42")
    rank = b.rank_pid()
    os.kill(b.proc.pid, signal.SIGTERM)  # Slurm signals every process of the job
    os.kill(rank, signal.SIGTERM)
    code, _, err = b.finish()
    assert b.log("rank.log") == ["TERM"]
    assert b.log("scontrol.log") == []
    assert code == 42, err


def test_the_requeue_budget_is_kept(batch) -> None:
    b = batch(TASK_MODE="42", SLURM_RESTART_COUNT="3")  # the dev profile's max_requeues
    b.rank_pid()
    os.kill(b.proc.pid, signal.SIGUSR2)
    code, _, err = b.finish()
    assert b.log("scontrol.log") == []
    assert code == 42
    assert "not requeued: job 4242 was requeued 3 times (max_requeues 3)" in err


def test_a_completed_step_ends_the_script_with_its_status(batch) -> None:
    b = batch(TASK_MODE="complete")
    code, _, err = b.finish()
    assert (code, b.log("scontrol.log")) == (0, []), err


def _requeue_function(script: str) -> str:
    start = script.index("requeue_from_host() {")
    return script[start : script.index("\n}\n", start) + 3]


@pytest.mark.parametrize(
    ("excluded", "expected"),
    [("(null)", "node5,node7"), ("node[1-2]", "node[1-2],node5,node7")],
)
def test_requeue_from_host_adds_nodes_to_the_exclusions(
    tmp_path: Path, user_env: Path, excluded: str, expected: str
) -> None:
    """The function a burn-in check calls: requeue, then ExcNodeList (kept + new)."""
    stubs = tmp_path / "stubs"
    (stubs / "bin").mkdir(parents=True)
    (stubs / "bin" / "scontrol").write_text("#!/bin/bash\n" + SCONTROL)
    (stubs / "bin" / "scontrol").chmod(0o755)
    spec = specs.resolve("tiny", "dev", nodes=2)
    code = _requeue_function(render(spec)) + 'requeue_from_host "node5,node7"\n'
    env = {
        "PATH": f"{stubs / 'bin'}:/usr/bin:/bin",
        "STUB_DIR": str(stubs),
        "STUB_EXCLUDED": excluded,
        "SLURM_JOB_ID": "77",
    }
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code], env=env, capture_output=True, text=True,
        timeout=HANG_GUARD_S,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (stubs / "scontrol.log").read_text().splitlines() == [
        "requeue 77",
        "-o show job 77",
        f"update JobId=77 ExcNodeList={expected}",
    ]


def test_a_rank_killed_by_the_forwarded_usr2_is_requeued_too(batch) -> None:
    """A rank that had no handler yet (still starting) dies of USR2 (status 140)."""
    b = batch(TASK_MODE="no-handler")
    b.rank_pid()
    os.kill(b.proc.pid, signal.SIGUSR2)
    code, _, err = b.finish()
    assert b.log("rank.log") == []
    assert b.log("scontrol.log") == ["requeue 4242"], err
    assert code == 0
