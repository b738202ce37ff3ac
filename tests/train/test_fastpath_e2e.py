"""The job with `train.compile: true` on CPU (inductor, C++ codegen): the compiled run
resumes bitwise, and computes the model the eager run does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from olmoctl.train.checkpoint.dcp import list_complete
from olmoctl.train.runtime.exit_codes import EXIT_COMPLETED
from tests.train.helpers import events, first, launch, logs, losses, tiny, wait_all, write_spec

pytestmark = pytest.mark.slow

# Micro-batch 24 x 2 accumulation steps: the compiled block and loss graphs are built once.
# Activation checkpointing too: compiled blocks recomputed under the attention context.
RECIPE = {
    "train.max_steps": 6,
    "train.micro_batch_size": 24,
    "checkpoint.interval_steps": 3,
    "checkpoint.keep_last": 5,
    "fsdp.activation_checkpointing": True,
}


def run(spec: Path, log_dir: Path) -> None:
    assert wait_all(launch(spec, 1, log_dir=log_dir)) == [EXIT_COMPLETED], logs(log_dir)


def test_compiled_run_resumes_bitwise_and_matches_eager(tmp_path: Path) -> None:
    compiled = tiny(**RECIPE, **{"train.compile": True})
    ref_dir = tmp_path / "ref"
    run(write_spec(ref_dir, compiled), tmp_path / "logs-ref")
    ref = losses(events(ref_dir))
    assert sorted(ref) == list(range(1, 7))
    speed = first(events(ref_dir), "started")["speed"]
    assert speed == {"compile": True, "attention": None, "cross_entropy": "chunked"}

    resumed = tmp_path / "resumed"
    shutil.copytree(ref_dir, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_00000006")
    (resumed / "events.jsonl").unlink()
    run(write_spec(resumed, compiled), tmp_path / "logs-resumed")
    evs = events(resumed)
    assert first(evs, "started")["start_step"] == 3
    got = losses(evs)
    assert sorted(got) == [4, 5, 6]
    assert all(got[s] == ref[s] for s in got), [(s, got[s], ref[s]) for s in got]
    assert [c.step for c in list_complete(resumed / "checkpoints")] == [3, 6]

    eager_dir = tmp_path / "eager"
    run(write_spec(eager_dir, tiny(**RECIPE, **{"train.compile": False})), tmp_path / "logs-e")
    eager = losses(events(eager_dir))
    # inductor fuses and reorders fp32 arithmetic: the same model to rounding, not bitwise.
    for s in ref:
        assert ref[s] == pytest.approx(eager[s], rel=1e-4), (s, ref[s], eager[s])
