"""The scale fixtures (benchmarks/scale_fixtures.py) read as olmoctl reads a real run: the
benchmarks measure nothing if the generator drifts from the run-directory contract."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from olmoctl.backends.files import LOCAL
from olmoctl.backends.jobfiles import slurm_rank_logs
from olmoctl.core.track import attempts as att
from olmoctl.core.track import classify as cl
from olmoctl.core.track import events as ev
from olmoctl.schemas.events import Burnin, BurninNode, Exiting, Straggler
from olmoctl.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import scale_fixtures as sf


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[sf.RunFixture, Path]:
    root = tmp_path_factory.mktemp("scale")
    fx = sf.make_run(root / "runs", 2, steps_per_attempt=40, ckpt_every=10)
    state = root / "state"
    sf.record_run(Store(state), fx)
    return fx, state


def test_run_dir_holds_one_log_per_rank_and_the_job_events(fixture) -> None:
    fx, _ = fixture
    assert fx.ranks == 16
    for a in fx.attempts:
        assert sorted(slurm_rank_logs(LOCAL, str(fx.run_dir), a.job_id)) == list(range(16))
    events = ev.read_events(fx.run_dir, None)
    nodes = [e for e in events if isinstance(e, BurninNode)]
    assert len(nodes) == 2 * len(fx.attempts)  # every node's numbers, every attempt
    assert sum(isinstance(e, Burnin) for e in events) == len(fx.attempts)
    assert sum(isinstance(e, Straggler) for e in events) == 3 * 40
    assert ev.summarize(events).step == fx.attempts[-1].last_step


def test_checkpoints_keep_last_complete_and_a_torn_one_unlisted(fixture) -> None:
    fx, _ = fixture
    listed = LOCAL.checkpoints(str(fx.run_dir))
    assert [(step, done) for step, _, done in listed] == [(s, True) for s in fx.checkpoint_steps]
    shards = list(Path(listed[-1][1]).glob("__*_0.distcp"))
    assert len(shards) == fx.ranks
    assert any(p.name.startswith(".tmp-") for p in (fx.run_dir / "checkpoints").iterdir())


def test_last_attempt_classifies_as_the_one_rank_that_raised(fixture) -> None:
    fx, _ = fixture
    last = fx.attempts[-1]
    seg = att.segment(ev.read_events(fx.run_dir, None), last.job_id, last.restart)
    verdict = cl.classify(
        slurm_state="FAILED",
        exit_code="1:0",
        node_list=[sf.node_list(fx.nodes)],
        batch_log=fx.run_dir / "logs" / f"slurm-{last.job_id}.out",
        rank_logs=slurm_rank_logs(LOCAL, str(fx.run_dir), last.job_id),
        exiting=next(e for e in seg if isinstance(e, Exiting)),
        down_nodes={},
    )
    assert verdict.klass == cl.CODE_ERROR
    assert verdict.evidence["rank"] == fx.failing_rank != 0


def test_store_rows_are_written_through_the_store(fixture) -> None:
    fx, state = fixture
    store = Store(state)
    rows = store.attempts(fx.name)
    assert [a.klass for a in rows] == ["NODE_FAIL", "TIMEOUT", "CODE_ERROR"]
    assert [a.restart_index for a in rows] == [0, 1, 0]
    assert [c.step for c in store.checkpoints(fx.name)] == fx.checkpoint_steps
    assert sf.make_store(state, state.parent / "runs", runs=3, attempts_per_run=4) == 12
    assert len(store.runs()) == 4
    assert store.last_attempts()["history-0002"][1] == 4
