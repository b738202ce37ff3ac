"""Failures against the real local Slurm, tiny recipe on 2 nodes: each fault is injected at a
known step (the job pauses after step 15 at a gate file), then olmoctl classifies, resumes
and the run ends COMPLETED with per-step losses identical (==) to an uninterrupted run.
The time-limit, preemption and node-failure cases run bare (`dev`) and with every rank in a
container without Slurm's clients (`dev-container`: bubblewrap, clusters/dev-container.yaml)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import HANG_GUARD_S, VENV_BIN, DevCluster, Olmoctl, wait_for

pytestmark = pytest.mark.slurm
# bare, and in a container that hides Slurm (the job side must need none of it)
PROFILES = ["dev", "dev-container"]


def args(cluster: str = "dev") -> list[str]:
    return ["tiny", "--cluster", cluster, "--nodes", "2"]


ARGS = args()


def losses(run_dir: Path) -> dict[int, float]:
    """step -> loss, the last time each step was computed."""
    out: dict[int, float] = {}
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev.get("event") == "step":
            out[ev["step"]] = ev["loss"]
    return out


@pytest.fixture(scope="module")
def reference(dev_cluster: DevCluster, tmp_path_factory) -> dict[int, float]:
    o = Olmoctl(dev_cluster, tmp_path_factory.mktemp("reference"))
    res = o("launch", *ARGS, "--name", "ref", "-o", o.root, "--wait", timeout=HANG_GUARD_S)
    assert res.returncode == 0, res.stderr
    ref = losses(o.runs / "ref")
    assert sorted(ref) == list(range(1, 41))
    return ref


class Faulty:
    """A run paused after step 15 (every rank waits at a gate file)."""

    def __init__(
        self,
        o: Olmoctl,
        cluster: DevCluster,
        name: str,
        *extra: str,
        faults: dict | None = None,
        profile: str = "dev",
    ) -> None:
        self.o, self.cluster, self.name = o, cluster, name
        self.dir = o.runs / name
        # In the run directory: the one place a container run may write.
        self.gate = self.dir / "fault.gate"
        spec = faults or {"pause_after_step": 15, "gate": str(self.gate)}
        env = dict(o.env, OLMOCTL_TRAIN_FAULTS=json.dumps(spec))
        res = o("launch", *args(profile), "--name", name, "-o", o.root, *extra, env=env)
        assert res.returncode == 0, res.stderr
        self.job = int(res.stdout.split()[2])
        cluster.submitted.append(self.job)

    def wait_paused(self) -> dict[int, int]:
        """rank -> pid once both ranks wait at the gate."""

        def both():
            files = {
                int(p.name.rsplit(".", 1)[1]): int(p.read_text())
                for p in self.gate.parent.glob(f"{self.gate.name}.waiting.*")
            }
            return files if len(files) == 2 else None

        return wait_for(both, HANG_GUARD_S, f"{self.name} to pause after step 15")

    def open_gate(self) -> None:
        self.gate.write_text("go")

    def detail(self) -> dict:
        return self.o.json("status", self.name)

    def wait_state(self, states: tuple[str, ...], timeout: float = HANG_GUARD_S) -> dict:
        return wait_for(
            lambda: (d := self.detail())["state"] in states and d,
            timeout,
            f"{self.name} to reach {states}",
        )

    def events(self, kind: str) -> list[dict]:
        path = self.dir / "events.jsonl"
        if not path.exists():
            return []
        return [
            e
            for line in path.read_text().splitlines()
            if (e := json.loads(line)).get("event") == kind
        ]


def _ledger_sums_to_wall_time(detail: dict) -> dict[str, float]:
    """status RUN --json's ledger: every second since submission in one category."""
    led = detail["ledger"]
    assert abs(sum(led["seconds"].values()) - led["wall_s"]) <= 1.0, led
    assert all(v >= 0 for v in led["seconds"].values()), led
    return led["seconds"]


def _watch(o: Olmoctl, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [VENV_BIN + "/olmoctl", "watch", "--interval", "1", "--backoff", "1", *args],
        env=o.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = HANG_GUARD_S, status: int = 0) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == status, out
    return out


@pytest.mark.burnin  # the resumed attempt burns in with one node down: the default path
@pytest.mark.parametrize(
    ("profile", "driver"), [("dev", "resume"), ("dev", "watch"), ("dev-container", "watch")]
)
def test_node_failure(olmoctl, dev_cluster, reference, profile: str, driver: str) -> None:
    run = Faulty(olmoctl, dev_cluster, f"nf-{driver}", profile=profile)
    run.wait_paused()
    nodes = subprocess.run(
        ["scontrol", "show", "hostnames", dev_cluster.job_field(run.job, "NodeList")],
        env=dev_cluster.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    victim = nodes[1]
    run.open_gate()  # the restarted job must not pause again; this one is stuck in a collective
    dev_cluster.kill_node(victim)
    watcher = _watch(olmoctl, "--until-done", run.name) if driver == "watch" else None

    def failed():
        attempts = run.detail()["attempt_list"]
        return attempts[0]["klass"] == "NODE_FAIL" and len(attempts) > 1 and attempts

    attempts = wait_for(failed, HANG_GUARD_S, "the node failure to be classified")
    assert attempts[0]["reason"] == f"node failure on {victim}"
    assert victim in {n["node"] for n in olmoctl.json("nodes")}
    if driver == "resume":
        res = olmoctl("resume", run.name)
        assert res.returncode == 0, res.stderr
        assert f"kept it off {victim}" in res.stdout
    done = run.wait_state(("COMPLETED",))
    if watcher is not None:
        _finish(watcher)
    last = done["attempt_list"][-1]
    assert (
        victim
        not in subprocess.run(
            ["scontrol", "show", "hostnames", last["node_list"]],
            env=dev_cluster.env,
            capture_output=True,
            text=True,
        ).stdout.split()
    )
    assert losses(run.dir) == reference
    # A new run on this cluster is kept off the failed node too.
    rendered = olmoctl("render", *args(profile), "-o", olmoctl.root)
    assert f"#SBATCH --exclude={victim}" in rendered.stdout


@pytest.mark.burnin  # spares need the burn-in that picks among them
def test_a_lost_node_is_replaced_by_the_spare_in_the_same_job(
    olmoctl, dev_cluster, reference
) -> None:
    """2 nodes + 1 spare: a training node (not the batch host) is crashed mid-run. The job
    keeps its allocation (--no-kill), the burn-in takes the spare, training goes on from the
    newest checkpoint in the same job: no new submission, a NODE_FAIL attempt naming the
    node, then COMPLETED, with the reference losses."""
    run = Faulty(olmoctl, dev_cluster, "inalloc", "--spare-nodes", "1")
    run.wait_paused()
    training = run.events("started")[-1]["nodes"]
    batch_host = dev_cluster.job_field(run.job, "BatchHost")
    victim = next(n for n in training if n != batch_host)
    run.open_gate()
    killed_at = time.time()
    dev_cluster.kill_node(victim)
    done = run.wait_state(("COMPLETED",))
    attempts = done["attempt_list"]
    assert [a["klass"] for a in attempts] == ["NODE_FAIL", "COMPLETED"], attempts
    assert {a["job_id"] for a in attempts} == {str(run.job)}  # no trip through the queue
    assert attempts[0]["reason"] == f"node failure on {victim}", attempts[0]
    assert [a["restart_index"] for a in attempts] == [0, 1]
    assert dev_cluster.job_field(run.job, "Restarts") == "0"  # never requeued
    restarted = run.events("started")[-1]
    assert restarted["attempt"] == 1 and victim not in restarted["nodes"], restarted
    print(f"in-allocation restart: kill -> started {restarted['ts'] - killed_at:.1f} s")
    seconds = _ledger_sums_to_wall_time(run.detail())
    assert seconds["restart"] > 0 and seconds["productive"] > 0, seconds
    assert victim in {n["node"] for n in olmoctl.json("nodes")}
    assert losses(run.dir) == reference
    batch = (run.dir / "logs" / f"slurm-{run.job}.out").read_text()
    assert f"olmoctl: lost {victim}: training starts again in job {run.job}" in batch


@pytest.mark.burnin
def test_a_cut_link_is_a_lost_node_too(olmoctl, dev_cluster, reference) -> None:
    """The training node's link cut (no crash: its processes live on, cut off): Slurm
    declares it dead, the job keeps its allocation and trains on the spare."""
    run = Faulty(olmoctl, dev_cluster, "cut", "--spare-nodes", "1")
    run.wait_paused()
    training = run.events("started")[-1]["nodes"]
    victim = next(n for n in training if n != dev_cluster.job_field(run.job, "BatchHost"))
    run.open_gate()
    dev_cluster.partition_node(victim)
    done = run.wait_state(("COMPLETED",))
    attempts = done["attempt_list"]
    assert [a["klass"] for a in attempts] == ["NODE_FAIL", "COMPLETED"], attempts
    assert {a["job_id"] for a in attempts} == {str(run.job)}
    assert attempts[0]["reason"] == f"node failure on {victim}", attempts[0]
    assert losses(run.dir) == reference
    seconds = _ledger_sums_to_wall_time(run.detail())
    assert seconds["restart"] > 0, seconds


def test_rank_killed_then_resumed(olmoctl, dev_cluster, reference) -> None:
    run = Faulty(olmoctl, dev_cluster, "rk")
    pids = run.wait_paused()
    os.kill(pids[1], signal.SIGKILL)
    run.open_gate()
    failed = wait_for(
        lambda: (d := run.detail())["attempt_list"][0]["klass"] and d,
        HANG_GUARD_S,
        "the killed rank to be classified",
    )
    assert failed["attempt_list"][0]["klass"] == "RANK_KILLED", failed["attempt_list"][0]
    res = olmoctl("resume", run.name)
    assert res.returncode == 0, res.stderr
    done = run.wait_state(("COMPLETED",))
    assert len(done["attempt_list"]) == 2
    assert losses(run.dir) == reference


@pytest.mark.parametrize("profile", PROFILES)
def test_time_limit_saves_and_requeues(olmoctl, dev_cluster, reference, profile: str) -> None:
    run = Faulty(olmoctl, dev_cluster, "tl", "--time", "00:01:00", profile=profile)
    # Normally the ranks wait at step 15 when the warning comes (Slurm checks limits every
    # ~30 s: 10-40 s into the job); on a loaded machine it may come before they get there.
    wait_for(lambda: run.events("signal_received"), HANG_GUARD_S, "USR2 before the time limit")
    run.open_gate()
    batch = run.dir / "logs" / f"slurm-{run.job}.out"
    wait_for(
        lambda: f"the ranks saved and stopped; job {run.job} requeued from" in batch.read_text(),
        HANG_GUARD_S,
        "the batch script to requeue the job from the host",
    )
    # Every later life would be warned as early again (and a loaded machine starts the ranks
    # about as slowly): give the requeued job the time to finish.
    more_time = ["scontrol", "update", f"JobId={run.job}", "TimeLimit=00:10:00"]
    wait_for(lambda: dev_cluster.run(more_time).returncode == 0, HANG_GUARD_S, "more time")
    done = run.wait_state(("COMPLETED",))
    attempts = done["attempt_list"]
    # Each requeue is an attempt of the same job; the second life may have been warned too
    # before the time limit was raised, so there may be more than one.
    assert [a["restart_index"] for a in attempts] == list(range(len(attempts)))
    assert len(attempts) >= 2
    assert {a["klass"] for a in attempts[:-1]} == {"PREEMPTED"}
    assert attempts[-1]["klass"] == "COMPLETED"
    assert {a["job_id"] for a in attempts} == {str(run.job)}
    # Saved at the first step boundary after the signal (the step it arrived in, or the next),
    # not only at the regular interval of 10.
    saved = [e["step"] for e in run.events("checkpoint_saved")]
    signalled = run.events("signal_received")[0]["step"]
    off_interval = [s for s in saved if s % 10]
    assert off_interval and signalled <= off_interval[0] <= signalled + 1, (signalled, saved)
    assert losses(run.dir) == reference


@pytest.mark.parametrize("profile", PROFILES)
def test_scontrol_requeue_preemption(olmoctl, dev_cluster, reference, profile: str) -> None:
    run = Faulty(olmoctl, dev_cluster, "pre", profile=profile)
    run.wait_paused()
    dev_cluster.run(["scontrol", "requeue", str(run.job)], check=True)
    wait_for(lambda: run.events("signal_received"), HANG_GUARD_S, "SIGTERM from the requeue")
    run.open_gate()
    done = run.wait_state(("COMPLETED",))
    attempts = done["attempt_list"]
    assert [a["restart_index"] for a in attempts] == [0, 1]
    assert attempts[0]["klass"] == "PREEMPTED"
    assert losses(run.dir) == reference


def test_controller_restart_loses_nothing(olmoctl, dev_cluster, reference) -> None:
    run = Faulty(olmoctl, dev_cluster, "ctl")
    run.wait_paused()
    dev_cluster.restart_controller()
    assert run.detail()["state"] == "RUNNING"
    run.open_gate()
    done = run.wait_state(("COMPLETED",))
    assert len(done["attempt_list"]) == 1
    assert losses(run.dir) == reference


def test_killed_mid_save_skips_torn_checkpoint(olmoctl, dev_cluster, reference) -> None:
    run = Faulty(
        olmoctl, dev_cluster, "torn", faults={"stall_save_step": 20, "stall_at": "before_marker"}
    )
    stalled = wait_for(
        lambda: (p := run.dir / "checkpoints" / ".stalled").exists() and p,
        HANG_GUARD_S,
        "rank 0 to stall in the step-20 save",
    )
    os.kill(int(stalled.read_text().split()[2]), signal.SIGKILL)
    wait_for(lambda: run.detail()["attempt_list"][0]["klass"], HANG_GUARD_S, "classification")
    res = olmoctl("resume", run.name, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["torn_checkpoints_skipped"] == [20]
    done = run.wait_state(("COMPLETED",))
    started = run.events("started")
    assert started[-1]["start_step"] == 10
    assert done["attempt_list"][1]["evidence"]["torn_checkpoints_skipped"] == [20]
    assert losses(run.dir) == reference


def test_hang_is_cancelled_and_resumed_by_watch(olmoctl, dev_cluster, reference) -> None:
    run = Faulty(olmoctl, dev_cluster, "hang", "-o", "cluster.hang_timeout_s=12")
    run.wait_paused()  # and the gate never opens: a hang
    out = _finish(_watch(olmoctl, "--until-done", run.name))
    assert "hung" in out and "resumed after HANG" in out
    done = run.detail()
    assert done["state"] == "COMPLETED"
    assert [a["klass"] for a in done["attempt_list"]] == ["HANG", "COMPLETED"]
    assert losses(run.dir) == reference


@pytest.mark.parametrize(
    "spares",
    [pytest.param(0, id="no-spares"), pytest.param(1, id="spare", marks=pytest.mark.burnin)],
)
def test_code_error_is_not_retried(olmoctl, dev_cluster, spares: int) -> None:
    """Not by watch, and with a spare not in the allocation either: the ranks' own error."""
    extra = ["--spare-nodes", "1"] if spares else []
    run = Faulty(olmoctl, dev_cluster, f"bug{spares}", *extra, faults={"raise_after_step": 5})
    # --until-done exits 1: the run ended needing a human (README's exit-status table)
    out = _finish(_watch(olmoctl, "--until-done", run.name), status=1)
    assert "CODE_ERROR is NOT retried" in out
    d = run.detail()
    assert len(d["attempt_list"]) == 1
    a = d["attempt_list"][0]
    assert a["klass"] == "CODE_ERROR"
    assert any("deliberate fault" in line for line in a["evidence"]["last_lines"])
    if spares:
        batch = (run.dir / "logs" / f"slurm-{run.job}.out").read_text()
        assert "not restarted: the job stopped on an error of its own" in batch


def test_two_watchers_resume_once(olmoctl, dev_cluster, reference) -> None:
    run = Faulty(olmoctl, dev_cluster, "two")
    pids = run.wait_paused()
    os.kill(pids[1], signal.SIGKILL)
    run.open_gate()
    wait_for(lambda: run.detail()["attempt_list"][0]["klass"], HANG_GUARD_S, "classification")
    watchers = [_watch(olmoctl, "--once", "--backoff", "0") for _ in range(2)]
    outs = [_finish(w) for w in watchers]
    assert sum("resumed after" in out for out in outs) == 1, outs
    done = run.wait_state(("COMPLETED",))
    assert len(done["attempt_list"]) == 2
    assert losses(run.dir) == reference
