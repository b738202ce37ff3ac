"""Fast in-process checks of the held-out split, the eval schema and the metrics sinks'
failure handling (the real runs are in test_eval_e2e.py)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from olmoctl.errors import UsageError
from olmoctl.schemas.errors import validate
from olmoctl.schemas.events import Eval, Exiting, Started, Step
from olmoctl.schemas.recipe import Recipe
from olmoctl.train.data.tokens import (
    TokenDataset,
    build_global_indices,
    draw_held_out,
    write_global_indices,
)
from olmoctl.train.observe.events import EventLog
from olmoctl.train.observe.sinks import Sink, Sinks, TensorBoardSink, WandbSink, values_of
from tests.train.helpers import tiny
from tests.train.sink_files import tb_scalars, wandb_history


def recipe(**kw: Any) -> Recipe:
    return validate(Recipe, tiny(**kw), "recipe")


# ------------------------------------------------------------------ the held-out split
def test_without_a_split_the_data_order_is_what_it_always_was() -> None:
    rng = np.random.Generator(np.random.PCG64(7))
    old = np.concatenate([rng.permutation(500).astype(np.uint32) for _ in range(3)])
    assert np.array_equal(build_global_indices(500, 1200, 7), old)
    assert np.array_equal(build_global_indices(500, 1200, 7, np.array([], np.uint32)), old)


def test_held_out_draw_is_deterministic_and_kept_out_of_every_epoch() -> None:
    held = draw_held_out(1000, 50, seed=7)
    assert np.array_equal(held, draw_held_out(1000, 50, seed=7))
    assert not np.array_equal(held, draw_held_out(1000, 50, seed=8))
    assert held.size == 50 and np.all(np.diff(held.astype(np.int64)) > 0)  # sorted, unique
    order = build_global_indices(1000, 5000, 7, held)
    assert order.size == 6 * 950  # whole epochs of the 950 training instances
    assert not np.isin(order, held).any()
    for epoch in order.reshape(6, 950):
        assert np.array_equal(np.sort(epoch), np.setdiff1d(np.arange(1000), held))


def _dataset(tmp_path: Path, n: int = 300) -> TokenDataset:
    path = tmp_path / "tok.npy"
    np.save(path, np.arange(n * 64, dtype=np.uint32) % 257)
    return TokenDataset([path], "uint32", 64)


def test_write_global_indices_records_the_split_and_refuses_another(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    write_global_indices(plain, ds, 400, seed=1)
    assert "held_out" not in json.loads((plain / "global_indices.json").read_text())
    assert not (plain / "held_out_indices.npy").exists()
    with pytest.raises(UsageError, match=r"another held-out split \(held_out 0 -> 30\)"):
        write_global_indices(plain, ds, 400, seed=1, held_out_fraction=0.1)

    split = tmp_path / "split"
    split.mkdir()
    write_global_indices(split, ds, 400, seed=1, held_out_fraction=0.1)
    meta = json.loads((split / "global_indices.json").read_text())
    held = np.load(split / "held_out_indices.npy")
    assert meta["held_out"] == held.size == 30
    first = np.load(split / "global_indices.npy")
    write_global_indices(split, ds, 2000, seed=1, held_out_fraction=0.1)  # a longer budget
    longer = np.load(split / "global_indices.npy")
    assert np.array_equal(longer[: first.size], first) and longer.size >= 2000
    assert np.array_equal(np.load(split / "held_out_indices.npy"), held)
    with pytest.raises(UsageError, match=r"held_out 30 -> 0"):
        write_global_indices(split, ds, 400, seed=1)
    with pytest.raises(UsageError, match="holds none"):
        write_global_indices(tmp_path, ds, 400, seed=1, held_out_fraction=0.001)


# ------------------------------------------------------------------ the eval section
def test_eval_section_names_sets_and_refuses_what_cannot_work() -> None:
    r = recipe(eval={"interval_steps": 5, "paths": ["/d/c4/val.npy", "/d/wiki.bin"]})
    assert r.eval is not None and r.eval.paths == {
        "val": ["/d/c4/val.npy"],
        "wiki": ["/d/wiki.bin"],
    }
    assert r.eval.batches == 4 and r.eval.held_out_fraction == 0
    assert recipe().eval is None and not recipe().metrics.tensorboard

    def refused(eval_cfg: dict[str, Any], *words: str) -> None:
        with pytest.raises(UsageError) as e:
            recipe(eval=eval_cfg)
        msg = str(e.value)
        assert "\n" not in msg and all(w in msg for w in words), msg

    refused({"interval_steps": 5}, "no eval set", "eval.paths", "eval.held_out_fraction")
    refused({"interval_steps": 0, "held_out_fraction": 0.1}, "eval.interval_steps")
    refused({"interval_steps": 5, "held_out_fraction": 0.9}, "eval.held_out_fraction")
    refused(
        {"interval_steps": 5, "paths": ["/a/val.npy", "/b/val.npy"]},
        "two eval files are named 'val'",
        "val_a",
    )
    refused(
        {"interval_steps": 5, "held_out_fraction": 0.1, "paths": {"held_out": ["/x"]}},
        "held_out",
    )
    refused({"interval_steps": 5, "paths": {"bad name!": ["/x"]}}, "eval.paths")
    with pytest.raises(UsageError, match=r"metrics\.wandb\.mode"):
        recipe(metrics={"wandb": {"project": "p", "mode": "sometimes"}})


# ------------------------------------------------------------------ the sinks
class Recorder(Sink):
    def __init__(self, name: str, fail_on: str = "") -> None:
        self.name, self.fail_on, self.calls = name, fail_on, []

    def open(self, started: Started) -> None:
        self._call("open", started.start_step)

    def log(self, step: int, values: dict[str, float]) -> None:
        self._call("log", step, values)

    def close(self, exiting: Exiting | None) -> None:
        self._call("close", exiting and exiting.reason)

    def _call(self, what: str, *args: Any) -> None:
        self.calls.append((what, *args))
        if what == self.fail_on:
            raise OSError(28, "No space left on device")


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_a_failing_sink_is_reported_once_and_dropped_the_others_go_on(tmp_path: Path) -> None:
    log = EventLog(tmp_path, enabled=True)
    ok, bad = Recorder("tensorboard"), Recorder("wandb", fail_on="log")
    log.listeners.append(Sinks([ok, bad], log.emit))
    log.emit(Started(start_step=0))
    for s in (1, 2, 3):
        log.emit(Step(step=s, loss=1.0 / s, lr=1e-3, mfu=None))
    log.emit(Eval(step=3, name="val", loss=2.0, perplexity=math.exp(2.0), seconds=0.1))
    log.emit(Exiting(reason="completed", exit_status=0, step=3))
    log.close()
    warnings = [e for e in _events(tmp_path / "events.jsonl") if e["event"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["source"] == "wandb"
    assert "No space left on device" in warnings[0]["message"]
    assert [c[0] for c in bad.calls] == ["open", "log", "close"]  # closed after failing
    assert [c[1] for c in ok.calls if c[0] == "log"] == [1, 2, 3, 3]
    assert ok.calls[-1] == ("close", "completed") and ok.calls.count(("close", "completed")) == 1
    assert ok.calls[1][2] == {"train/loss": 1.0, "train/lr": 1e-3}  # mfu null: not logged


def test_a_missing_package_is_a_warning_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    log = EventLog(tmp_path, enabled=True)
    cfg = recipe(metrics={"wandb": {"project": "p"}}).metrics.wandb
    assert cfg is not None
    log.listeners.append(Sinks([WandbSink(cfg, "offline", tmp_path, "r", {})], log.emit))
    log.emit(Started(start_step=0))
    log.emit(Step(step=1, loss=1.0))
    log.close()
    (warning,) = [e for e in _events(tmp_path / "events.jsonl") if e["event"] == "warning"]
    assert "wandb is not installed (pip install 'olmoctl[wandb]')" in warning["message"]


def test_wandb_crashing_mid_run_leaves_tensorboard_and_the_events(tmp_path: Path) -> None:
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'olmoctl[wandb]')")
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    log = EventLog(tmp_path, enabled=True)
    cfg = recipe(metrics={"wandb": {"project": "p"}}).metrics.wandb
    assert cfg is not None
    wb = WandbSink(cfg, "offline", tmp_path, "crashy", {"x": 1})
    tb = TensorBoardSink(tmp_path / "tensorboard")
    log.listeners.append(Sinks([tb, wb], log.emit))
    log.emit(Started(start_step=0))
    log.emit(Step(step=1, loss=3.0, lr=0.1))

    def dead(*args: Any, **kw: Any) -> None:
        raise ConnectionResetError("wandb-core went away")

    wb.run.log = dead
    log.emit(Step(step=2, loss=2.0, lr=0.1))
    log.emit(Step(step=3, loss=1.0, lr=0.1))
    log.emit(Exiting(reason="completed", exit_status=0, step=3))
    log.close()
    warnings = [e for e in _events(tmp_path / "events.jsonl") if e["event"] == "warning"]
    assert [w["source"] for w in warnings] == ["wandb"]
    assert "ConnectionResetError: wandb-core went away" in warnings[0]["message"]
    assert tb_scalars(tmp_path / "tensorboard")["train/loss"] == [(1, 3.0), (2, 2.0), (3, 1.0)]
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    assert sorted(wandb_history(offline)) == [1]  # what it logged before it died


def test_values_of_events() -> None:
    assert values_of(Step(step=2, loss=float("nan"), lr=0.5, tokens_per_s=3.0)) == (
        2,
        {"train/lr": 0.5, "train/tokens_per_s": 3.0},
    )
    assert values_of(Eval(step=5, name="c4", loss=2.0, perplexity=7.0, seconds=1.5)) == (
        5,
        {"eval/c4/loss": 2.0, "eval/c4/perplexity": 7.0, "eval/c4/seconds": 1.5},
    )
    assert values_of(Step(loss=1.0)) is None and values_of(Started()) is None
