"""Each rank times its own compute and rank 0 writes the slowest rank of every log interval
(olmoctl/train/stragglers.py), with real ranks on gloo. That a slowed node is the one named
is tested on the dev cluster (tests/integration/test_watchers.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from olmoctl.train.stragglers import StepTimes
from tests.train.helpers import events, launch, logs, tiny, wait_all, write_spec

pytestmark = pytest.mark.slow


def test_two_ranks_write_a_straggler_event_every_log_interval(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    recipe = tiny(**{"train.max_steps": 12, "train.micro_batch_size": 12,
                     "train.log_interval": 4, "checkpoint.interval_steps": 12})  # fmt: skip
    spec = write_spec(run_dir, recipe)
    codes = wait_all(launch(spec, 2, log_dir=tmp_path / "logs"))
    assert codes == [0, 0], logs(tmp_path / "logs")
    evs = events(run_dir)
    found = [e for e in evs if e["event"] == "straggler"]
    assert [e["step"] for e in found] == [4, 8, 12]
    for e in found:
        assert e["world_size"] == 2 and e["rank"] in (0, 1)
        assert e["node"] == socket.gethostname()  # no SLURMD_NODENAME outside srun
        assert e["seconds"] > 0 and e["median_s"] > 0 and e["ratio"] >= 1.0
        assert e["seconds"] == max(s["seconds"] for s in e["slowest"])
        assert {s["rank"] for s in e["slowest"]} == {0, 1}


def test_one_rank_adds_no_hooks_and_reports_nothing() -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    times = StepTimes(model, opt, torch.device("cpu"))
    assert not model._forward_hooks and not model._forward_pre_hooks
    assert times.report(1, events=None) is None  # type: ignore[arg-type]
