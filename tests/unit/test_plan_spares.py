"""`plan` with in-allocation restarts (issue 24 item 5): the simulator's spares (no queue
while they last and the per-allocation cap holds, the queue after; spares billed), the
measured node failure rate from a made-up store, and --checkpoint-interval auto|STEPS."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from olmoctl.core.plan import costs as P
from olmoctl.core.plan import inputs as plan_inputs
from olmoctl.core.plan import simulate as S
from olmoctl.store.models import Attempt, AttemptState

NODES = 128
WORK_S = 20 * 86400.0


def _costs(**kw) -> P.Costs:
    base = P.Costs(
        save_s=30.0,
        load_s=30.0,
        block_s=1.0,
        job_mtbf_s=6335 * 3600.0 / NODES,  # Llama 3's node MTBF
        detect_s=300.0,
        queue_wait_s=3600.0,
        restart_s=300.0,
        time_limit_s=48 * 3600.0,
        nodes=NODES,
    )
    return dataclasses.replace(base, **kw)


def _runs(c: P.Costs, seeds: int = 16, intervals=(600.0, 1800.0)) -> S.Runs:
    return S.runs(c, WORK_S, list(intervals), async_saves=False, seeds=seeds)


def test_spares_without_restarts_change_nothing_but_the_bill() -> None:
    """restarts_max 0 (burn-in off): the same runs, the spares held all along."""
    plain = _runs(_costs())
    idle = _runs(_costs(spares=2, restarts_max=0))
    assert np.array_equal(plain.goodput, idle.goodput)
    assert idle.in_alloc.sum() == 0 and plain.requeues.sum() > 0
    np.testing.assert_allclose(idle.node_goodput, plain.node_goodput * NODES / (NODES + 2))


def test_endless_spares_never_queue_after_a_failure() -> None:
    """With more spares and restarts than failures and no time limit, no run ever waits in
    the queue: its wall time is the same whatever the queue wait (common random numbers)."""
    many = _costs(spares=10_000, restarts_max=10_000, time_limit_s=0.0)
    r = _runs(many)
    assert r.requeues.sum() == 0 and r.in_alloc.min() > 0
    no_wait = _runs(dataclasses.replace(many, queue_wait_s=0.0))
    assert np.array_equal(r.wall, no_wait.wall)
    # Without spares the same failures each cost a queue wait.
    assert (_runs(_costs(time_limit_s=0.0)).goodput < r.goodput).all()


@pytest.mark.parametrize(("spares", "restarts"), [(1, 100), (5, 1), (2, 2)])
def test_restarts_in_one_allocation_are_capped(spares: int, restarts: int) -> None:
    """min(spares, restarts) restarts per allocation at most, then the queue: with no time
    limit every allocation but the first begins with a requeue."""
    r = _runs(_costs(spares=spares, restarts_max=restarts, time_limit_s=0.0), seeds=32)
    cap = min(spares, restarts)
    assert (r.in_alloc <= cap * (r.requeues + 1)).all()
    assert r.requeues.sum() > 0 and r.in_alloc.sum() > 0
    assert r.in_alloc.max() == pytest.approx(cap * (r.requeues.max() + 1), abs=cap * 3)


def test_more_spares_more_time_goodput_fewer_node_hours_goodput() -> None:
    """An hour's queue wait per failure: each spare takes some off (time goodput rises) and is
    billed for the whole run (node-hour goodput falls once the queue is gone)."""
    rows = {k: _runs(_costs(spares=k, restarts_max=3), seeds=32) for k in (0, 1, 2, 4)}
    time_gp = [rows[k].goodput.mean() for k in (0, 1, 2, 4)]
    node_gp = [rows[k].node_goodput.mean() for k in (0, 1, 2, 4)]
    assert time_gp == sorted(time_gp) and time_gp[2] > time_gp[0] + 0.005
    assert node_gp[4 - 1] < node_gp[2]  # 4 spares: billed, little left to save
    assert [rows[k].requeues.mean() for k in (0, 1, 2, 4)] == sorted(
        [rows[k].requeues.mean() for k in (0, 1, 2, 4)], reverse=True
    )


def test_no_failures_the_node_hour_goodput_is_the_spares_share() -> None:
    c = _costs(job_mtbf_s=1e15, time_limit_s=0.0, spares=4, restarts_max=3)
    r = _runs(c, intervals=(3600.0,))
    saves = np.ceil(WORK_S / 3600.0) - 1
    need = c.restart_s + WORK_S + saves * c.save_s + c.save_s
    np.testing.assert_allclose(r.goodput, WORK_S / need)
    np.testing.assert_allclose(r.node_goodput, WORK_S / need * NODES / (NODES + 4))


def test_the_time_limit_runs_on_across_restarts_in_the_allocation() -> None:
    """A restart in the allocation does not renew its time limit: with a 4 h limit and a
    failure every ~2 h, no allocation holds its nodes longer than 4 h, restarts or not."""
    c = _costs(job_mtbf_s=2 * 3600.0, time_limit_s=4 * 3600.0, queue_wait_s=0.0)
    r = _runs(dataclasses.replace(c, spares=100, restarts_max=100), intervals=(900.0,))
    assert r.in_alloc.sum() > 0 and r.limits.sum() > 0
    allocations = 1 + r.requeues + r.limits
    assert (r.wall <= allocations * 4 * 3600.0 + 1e-6).all()  # no queue wait: wall is held
    # A limit renewed by every restart would let allocations run far past 4 h.
    assert (r.wall > 0.8 * allocations * 4 * 3600.0).any()


def _attempt(i: int, klass: str | None, started: float | None, ended: float | None, nodes=4):
    return Attempt(
        id=i, run_name="r", attempt_no=i, job_id="7", cluster="c", nodes=nodes, node_list=None,
        submitted_at=0.0, started_at=started, ended_at=ended, state=AttemptState.COMPLETED,
        exit_code=None, reason=None, first_step=None, last_step=None, script=None, evidence={},
        restart_index=i, klass=klass,
    )  # fmt: skip


def test_failure_rate_counts_interruptions_over_training_node_hours() -> None:
    rows = [
        _attempt(0, "NODE_FAIL", 0.0, 7200.0),  # 4 nodes x 2 h, one failure
        _attempt(1, "NODE_FAIL", 7200.0, 9000.0),  # an in-allocation restart's record
        _attempt(2, "COMPLETED", 9000.0, 9000.0 + 3600.0, nodes=2),
        _attempt(3, "NODE_FAIL", 100.0, None),  # not ended: not counted at all
        _attempt(4, "TIMEOUT", 50.0, 10.0),  # clock skew: no negative hours
    ]
    assert plan_inputs.failure_rate(rows) == (2, pytest.approx(8 + 2 + 2))
    assert plan_inputs.failure_rate([]) == (0, 0.0)


def test_observed_mtbf_from_a_made_up_store_feeds_auto(user_env) -> None:
    from olmoctl.store import Store

    store = Store()
    conn = store.connect(create=True)  # raw rows: a store written by earlier runs
    with store.tx() as tx:
        for run, cluster in (("r", "lumi"), ("d", "dev")):
            conn.execute(
                "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, "
                "total_steps, created_at, updated_at, summary_json) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run, "7b", cluster, 100, "COMPLETED", "/x", "{}", 1, 0, 0, "{}"),
            )
        for i, klass in enumerate(["NODE_FAIL", "COMPLETED", "NODE_FAIL"]):
            tx.add_attempt(
                "r", cluster="lumi", nodes=100, state="COMPLETED", started_at=i * 36000.0,
                ended_at=(i + 1) * 36000.0, klass=klass, restart_index=i,
            )  # fmt: skip
        tx.add_attempt("d", cluster="dev", nodes=1, state="FAILED", started_at=0, ended_at=1,
                       klass="NODE_FAIL")  # fmt: skip
    store.close()
    obs = plan_inputs.observed("7b", "lumi")
    assert obs.node_mtbf_hours == pytest.approx(3 * 100 * 10 / 2)  # 3,000 node-hours, 2 failures
    r, c = plan_inputs.load("7b", "lumi", [])
    p = P.make_plan(r, c, 256, observed=obs, auto_interval=True)
    assert p.node_mtbf_source.startswith("observed (store:")
    job_mtbf = 1500 * 3600.0 / 256
    assert p.async_saves  # LUMI has GPUs, the recipe leaves async to the trainer
    want = P.young_daly(p.costs.block_s, job_mtbf) / p.step_s
    assert p.recipe_interval_steps == max(1, round(want))
    assert "observed" in p.interval_source and "Young/Daly" in p.interval_source


def test_auto_interval_without_observations_uses_the_profile() -> None:
    r, c = plan_inputs.load("7b", "lumi", ["checkpoint.async_save=false"])
    p = P.make_plan(r, c, 256, auto_interval=True)
    assert not p.async_saves and "node MTBF from: profile" in p.interval_source
    want = P.young_daly(p.costs.save_s, 6335 * 3600.0 / 256) / p.step_s
    assert p.recipe_interval_steps == round(want)
    assert p.intervals["recipe_sync"].interval_s == pytest.approx(round(want) * p.step_s)


def test_spares_are_held_and_billed_in_the_expected_column() -> None:
    r, c = plan_inputs.load("7b", "lumi", [])
    plain, spared = P.make_plan(r, c, 256), P.make_plan(r, c, 256, spare_nodes=2)
    assert spared.spare_nodes == 2 and spared.costs.spares == 2
    assert spared.costs.restarts_max == c.burnin.restarts_in_allocation == 3
    assert spared.expected.node_hours == pytest.approx(plain.expected.node_hours * 258 / 256)
    assert sorted(spared.time_limit_by_spares) == [0, 1, 2, 4]
    assert sorted(P.make_plan(r, c, 256, spare_nodes=3).time_limit_by_spares) == [0, 1, 2, 3, 4]


def test_cli_spares_table_and_json(cli) -> None:
    res = cli("plan", "7b", "-c", "lumi", "-N", "256", "--simulate", "--seeds", "4",
              "--spare-nodes", "3")  # fmt: skip
    assert res.code == 0, res.err
    assert "Simulated goodput with spare nodes" in res.out
    assert "node-hours = productive node-hours / allocated node-hours" in " ".join(res.out.split())
    assert "the profile's detect_s" in " ".join(res.out.split())
    res = cli("plan", "7b", "-c", "lumi", "-N", "256", "--simulate", "--seeds", "4", "--json")
    assert res.code == 0, res.err
    sp = json.loads(res.out)["simulation"]["spares"]
    assert [row["spares"] for row in sp["rows"]] == [0, 1, 2, 4]
    assert sp["rows"][0]["restarts_in_allocation"] == 0
    assert sp["rows"][2]["requeues_after_failures"] <= sp["rows"][0]["requeues_after_failures"]


def test_spares_launch_would_refuse_are_warned() -> None:
    r, c = plan_inputs.load(
        "tiny", "local", ["cluster.peak_tflops_bf16=10", "cluster.gpu_memory_gb=10"]
    )
    p = P.make_plan(r, c, 1, spare_nodes=2)
    assert p.costs.restarts_max == 0  # no batch script: spares restart nothing
    assert any("cluster 'local' is not a Slurm cluster" in w for w in p.warnings)
    r, c = plan_inputs.load("7b", "lumi", ["cluster.max_nodes=257"])
    warned = P.make_plan(r, c, 256, spare_nodes=2).warnings
    assert any("256 nodes + 2 spares is above cluster 'lumi''s limit of 257" in w for w in warned)
    assert not any("spares" in w for w in P.make_plan(r, c, 256, spare_nodes=1).warnings)


def test_cli_checkpoint_interval(cli) -> None:
    res = cli("plan", "7b", "-c", "lumi", "-N", "256", "--checkpoint-interval", "auto")
    assert res.code == 0, res.err
    text = " ".join(res.out.split())
    assert "auto: Young/Daly" in text and "node MTBF from: profile" in text
    assert "launch with -o checkpoint.interval_steps=" in text
    res = cli("plan", "7b", "-c", "lumi", "-N", "256", "--checkpoint-interval", "500", "--json")
    data = json.loads(res.out)
    assert data["recipe_interval_steps"] == 500 and data["interval_source"] == "recipe"


@pytest.mark.parametrize("value", ["0", "-5", "1e3", "abc", "9" * 40, "", "12\n"])
def test_cli_checkpoint_interval_bad_input(cli, value: str) -> None:
    res = cli("plan", "7b", "-c", "lumi", "-N", "8", "--checkpoint-interval", value)
    assert res.code == 2, (res.out, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "--checkpoint-interval must be a number of steps" in lines[0]
