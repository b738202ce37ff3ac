"""Each rank times its own compute and rank 0 writes the slowest rank of every log interval
(olmoctl/train/observe/stragglers.py), with real ranks on gloo. That a slowed node is the one named
is tested on the dev cluster (tests/integration/test_watchers.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import torch

from olmoctl.train.observe import stragglers
from olmoctl.train.observe.stragglers import StepTimes
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


class _Slow(torch.nn.Module):
    """A block whose forward takes `train_s` in train mode and `eval_s` in eval mode."""

    def __init__(self, train_s: float, eval_s: float) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.train_s, self.eval_s = train_s, eval_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.train_s if self.training else self.eval_s)
        return self.lin(x)


def _interval(monkeypatch: pytest.MonkeyPatch, with_eval: bool) -> float:
    """One log interval's compute seconds per step as StepTimes measures it on a rank of
    two (the world faked: the hooks, not the collectives, are what is tested here)."""
    monkeypatch.setattr(stragglers.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(stragglers.dist, "get_world_size", lambda: 2)
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([_Slow(0.02, 0.4), _Slow(0.02, 0.4)])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    times = StepTimes(model, opt, torch.device("cpu"))
    for _ in range(2):
        model.train()
        x = torch.ones(1, 2)
        for block in model.blocks:
            x = block(x)
        x.sum().backward()
        opt.step()
        opt.zero_grad()
        if with_eval:  # as olmoctl.train.observe.evaluate runs an eval at a step boundary
            with torch.no_grad():
                model.eval()
                for block in model.blocks:
                    block(torch.ones(1, 2))
                model.train()
    assert times.steps == 2
    return times.seconds / times.steps


def test_an_eval_in_the_interval_is_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _interval(monkeypatch, with_eval=False)
    evaluated = _interval(monkeypatch, with_eval=True)
    assert 0.04 <= plain < 0.2  # two 20 ms block forwards a step, and the optimizer
    assert 0.04 <= evaluated < 0.2, evaluated  # not the eval's 800 ms
    assert abs(evaluated - plain) < 0.1
