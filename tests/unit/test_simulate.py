"""The goodput simulator: at Llama 3's failure rate on 128 nodes its optimum interval is
Young/Daly's, it converges with the seed count, and it agrees with the closed form."""

from __future__ import annotations

import numpy as np
import pytest

from olmoctl.core.plan import costs as P
from olmoctl.core.plan import inputs as plan_inputs
from olmoctl.core.plan import simulate as S

# Llama 3 (Dubey et al. 2024, section 3.3.4): 419 unexpected interruptions in 54 days on
# 16,384 GPUs = 2,048 nodes of 8. Per-node MTBF ~6,335 h; on 128 nodes (1,024 GPUs) ~49.5 h.
NODE_MTBF_S = 2048 * 54 * 24 * 3600 / 419
JOB_MTBF_S = NODE_MTBF_S / 128


def _costs(save_s: float = 60.0, limit_s: float = 48 * 3600.0) -> P.Costs:
    # A 65B-class checkpoint (~780 GB at ~13 GB/s), Slurm's 5 min detection, 10 min queue,
    # 3 min restart, a 48 h time limit.
    return P.Costs(
        save_s=save_s,
        load_s=save_s,
        block_s=1.5,
        job_mtbf_s=JOB_MTBF_S,
        detect_s=300.0,
        queue_wait_s=600.0,
        restart_s=180.0,
        time_limit_s=limit_s,
    )


def _optimum(costs: P.Costs, async_saves: bool, seeds: int, seed: int = 0) -> float:
    yd = P.young_daly(costs.block_s if async_saves else costs.save_s, costs.job_mtbf_s)
    grid = S.GRID * yd
    g = S.goodput(costs, 30 * 86400.0, grid, async_saves=async_saves, seeds=seeds, seed=seed)
    return S.best_interval(grid, g.mean(axis=0)) / yd


@pytest.mark.parametrize("async_saves", [False, True])
def test_simulated_optimum_is_young_daly_at_llama3_failure_rate(async_saves: bool) -> None:
    ratio = _optimum(_costs(), async_saves, seeds=256)
    assert abs(ratio - 1) < 0.25, ratio


def test_converges_with_the_seed_count() -> None:
    c = _costs()
    yd = P.young_daly(c.save_s, c.job_mtbf_s)

    def spread(seeds: int) -> float:
        means = [
            S.goodput(c, 30 * 86400.0, [yd], async_saves=False, seeds=seeds, seed=k).mean()
            for k in range(8)
        ]
        return float(np.std(means))

    small, large = spread(8), spread(128)
    assert large < small / 2, (small, large)  # ~1/sqrt(seeds): 4x fewer at 16x the seeds
    # And the optimum estimate settles on Young/Daly as seeds grow.
    assert abs(_optimum(c, False, seeds=512, seed=1) - 1) < 0.15


def test_no_failures_no_time_limit_is_exactly_the_save_overhead() -> None:
    c = P.Costs(10.0, 10.0, 1.0, 1e30, 300.0, 600.0, 180.0, 0.0)
    g = S.goodput(c, 100_000.0, [990.0], async_saves=False, seeds=3)
    # 100,000 s of work = 102 stretches of up to 990 s, each followed by a 10 s save (the
    # last one at the end), after the 180 s start.
    assert g == pytest.approx(100_000 / (100_000 + 102 * 10 + 180))


def test_agrees_with_the_closed_form() -> None:
    r, cl = plan_inputs.load("7b", "h100")
    p = P.make_plan(r, cl, 128)
    sim = S.simulate(p, seeds=128)
    for mode in ("sync", "async"):
        m = sim["modes"][mode]
        assert m["young_daly"]["mean"] == pytest.approx(m["analytic_young_daly"], abs=0.005)
        assert m["young_daly"]["p5"] <= m["young_daly"]["mean"] <= m["young_daly"]["p95"]
    # The headline: 7B on 1,024 H100s at Llama 3's failure rate, async saves.
    assert sim["modes"]["async"]["young_daly"]["mean"] >= 0.97
    assert len(sim["table"]) >= 6 and {"sync", "async"} <= set(sim["table"][0])


def test_excluding_failed_nodes_keeps_lemons_out() -> None:
    c = _costs()
    yd = P.young_daly(c.block_s, c.job_mtbf_s)
    kw = dict(async_saves=True, seeds=64, bad_fraction=0.5, bad_mtbf_s=6 * 3600.0)
    with_ex = S.goodput(c, 30 * 86400.0, [yd], exclude_failed=True, **kw).mean()
    without = S.goodput(c, 30 * 86400.0, [yd], exclude_failed=False, **kw).mean()
    assert with_ex > without + 0.01


def test_time_limit_restarts_cost_a_queue_wait_and_a_restart_each() -> None:
    no_fail = P.Costs(0.0, 0.0, 0.0, 1e30, 0.0, 3600.0, 0.0, 10 * 3600.0)
    g = S.goodput(no_fail, 95 * 3600.0, [1000.0], async_saves=False, seeds=400)
    # 9 restarts after 10 h attempts, each waiting an exponential hour on average.
    assert g.mean() == pytest.approx(95 / (95 + 9), rel=0.01)
    assert g.std() > 0


def test_plot_writes_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    r, cl = plan_inputs.load("1b", "a100")
    p = P.make_plan(r, cl, 16)
    out = tmp_path / "goodput.png"
    S.plot(S.simulate(p, seeds=4), str(out), "test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
