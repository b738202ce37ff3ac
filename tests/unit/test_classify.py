"""Classification of attempt endings from Slurm's record, the logs and the events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from olmoctl.core.track import classify as cl
from olmoctl.schemas.events import Exiting

TB_CODE = """step 5/40 loss 4.1
Traceback (most recent call last):
  File "trainer.py", line 278, in run
    self.faults.raise_after_step(self.step)
RuntimeError: deliberate fault after step 5
submitit ERROR - Submitted job triggered an exception
[rank0]: Traceback (most recent call last):
[rank0]:   File "submit_entry.py", line 52, in __call__
[rank0]: olmoctl.train.submit_entry.TrainFailed: training failed at step 5 (exit status 1)
"""
TB_GLOO = """Traceback (most recent call last):
  File "trainer.py", line 260, in run
RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer
"""
NCCL = "[E ProcessGroupNCCL.cpp:475] Watchdog caught collective operation timeout: WorkNCCL\n"


def _logs(tmp_path: Path, **texts: str) -> dict[int, Path]:
    out = {}
    for key, text in texts.items():
        p = tmp_path / f"{key}.out"
        p.write_text(text)
        out[int(key.removeprefix("r"))] = p
    return out


def _batch(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "slurm.out"
    p.write_text(text)
    return p


def _classify(**kw):
    base = dict(
        slurm_state="FAILED",
        exit_code="1:0",
        node_list=["node[1-2]"],
        batch_log=None,
        rank_logs={},
        exiting=None,
        down_nodes={},
    )
    base.update(kw)
    return cl.classify(**base)


def test_completed_and_preempted() -> None:
    assert (
        _classify(slurm_state="COMPLETED", exiting=Exiting(reason="completed")).klass
        == cl.COMPLETED
    )
    v = _classify(slurm_state="COMPLETED", exiting=Exiting(reason="preempted", signal="SIGUSR2"))
    assert v.klass == cl.PREEMPTED and v.infra
    assert _classify(slurm_state="REQUEUED").klass == cl.PREEMPTED
    assert _classify(slurm_state="TIMEOUT").klass == cl.TIMEOUT


def test_node_failure_names_the_node(tmp_path: Path) -> None:
    batch = _batch(
        tmp_path,
        "srun: error: Node failure on node2\n*** JOB 7 CANCELLED DUE TO NODE FAILURE ***\n",
    )
    v = _classify(slurm_state="NODE_FAIL", batch_log=batch)
    assert v.klass == cl.NODE_FAIL and v.nodes == ["node2"] and v.reason == "node failure on node2"
    v = _classify(slurm_state="NODE_FAIL", down_nodes={"node3": "DOWN Not responding"})
    assert v.nodes == ["node3"]
    v = _classify(slurm_state="NODE_FAIL")
    assert v.nodes == [] and "one of node[1-2]" in v.reason  # nobody blamed without evidence


def test_code_error_reports_root_cause(tmp_path: Path) -> None:
    v = _classify(rank_logs=_logs(tmp_path, r0=TB_CODE, r1=TB_GLOO))
    assert v.klass == cl.CODE_ERROR and not v.infra
    assert v.evidence["rank"] == 0
    assert v.evidence["last_lines"][-1] == "RuntimeError: deliberate fault after step 5"
    assert v.reason == "rank 0: RuntimeError: deliberate fault after step 5"


def test_killed_rank_beats_its_peers_collective_errors(tmp_path: Path) -> None:
    batch = _batch(tmp_path, "srun: error: node2: task 1: Killed\n")
    v = _classify(batch_log=batch, rank_logs=_logs(tmp_path, r0=TB_GLOO, r1="step 15\n"))
    assert v.klass == cl.RANK_KILLED and v.evidence["killed_rank"] == 1 and v.infra


@pytest.mark.parametrize("text", [NCCL, TB_GLOO])
def test_collective_failure_is_infrastructure(tmp_path: Path, text: str) -> None:
    v = _classify(rank_logs=_logs(tmp_path, r0="ok\n", r1=text))
    assert v.klass == cl.COLLECTIVE and v.infra and v.evidence["rank"] == 1


def test_oom_cancel_hang() -> None:
    assert _classify(slurm_state="OUT_OF_MEMORY").klass == cl.OOM
    assert _classify(slurm_state="CANCELLED", cancelled_by_user=True).klass == cl.CANCELLED
    assert _classify(slurm_state="CANCELLED", hang=True).klass == cl.HANG


def test_observed_mfu_and_mtbf(user_env, tmp_path: Path) -> None:
    from olmoctl.core.plan.inputs import observed
    from olmoctl.store import Store

    assert observed("tiny", "dev").mfu is None  # no store yet, and none is created
    store = Store()
    assert not store.path.exists()
    conn = store.connect(create=True)  # raw rows: a store written by earlier runs
    with store.tx() as tx:
        for i, mfu in enumerate([0.3, 0.5, 0.4]):
            conn.execute(
                "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, "
                "total_steps, created_at, updated_at, summary_json) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f"r{i}",
                    "tiny",
                    "dev",
                    2,
                    "COMPLETED",
                    "/x",
                    "{}",
                    1,
                    0,
                    0,
                    json.dumps({"mfu": mfu}),
                ),
            )
            tx.add_attempt(
                f"r{i}",
                cluster="dev",
                nodes=2,
                state="COMPLETED",
                started_at=0,
                ended_at=3600,
                klass="NODE_FAIL" if i == 0 else "COMPLETED",
            )
    obs = observed("tiny", "dev")
    assert obs.mfu == 0.4
    assert obs.node_mtbf_hours == 6.0  # 3 attempts x 2 nodes x 1 h / 1 failure


def test_slurm_timeout_wins_over_the_jobs_own_save() -> None:
    """At the limit Slurm sends SIGTERM; the job saves and says `preempted`. The attempt still
    ended because of the time limit (seen for real: tests/integration/test_wait_exits.py)."""
    v = _classify(slurm_state="TIMEOUT", exiting=Exiting(reason="preempted", signal="SIGTERM"))
    assert (v.klass, v.reason) == (cl.TIMEOUT, "time limit reached, checkpoint saved")


def test_scancel_wins_over_the_jobs_sigterm_save() -> None:
    """scancel sends SIGTERM too: the job saves and exits, but it was cancelled (a --wait
    on it exits 3, not 4, and watch does not resume it)."""
    v = _classify(slurm_state="CANCELLED", exiting=Exiting(reason="preempted", signal="SIGTERM"))
    assert (v.klass, v.reason) == (cl.CANCELLED, "cancelled (not by olmoctl), checkpoint saved")
    assert _classify(slurm_state="TIMEOUT").reason == "time limit reached"


def test_a_job_that_lost_more_nodes_than_it_had_spares_is_a_node_failure(tmp_path) -> None:
    """The batch script ends a shrunk job itself (templates/restarts.sh.j2): FAILED for
    Slurm, a node failure for olmoctl, the lost nodes named (kept off when resubmitted)."""
    batch = tmp_path / "slurm-7.out"
    batch.write_text(
        "srun: error: Node failure on node3\n"
        "olmoctl: lost node3,node4: 1 nodes left of 2; job 7 ends here (NODE_FAIL): watch or "
        "olmoctl resume submits it again without node3,node4\n"
    )
    v = cl.classify(slurm_state="FAILED", exit_code="1:0", node_list=["node[1-4]"],
                    batch_log=batch, rank_logs={}, exiting=None, down_nodes={})  # fmt: skip
    assert v.klass == cl.NODE_FAIL and v.nodes == ["node3", "node4"]
    assert v.reason == "node failure on node3,node4"
