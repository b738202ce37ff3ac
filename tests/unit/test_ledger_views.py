"""Where the goodput ledger shows: `status RUN` (a line, and `ledger` in --json, with plan's
prediction beside it) and the run card (table + stacked bar PNG). Scheduler faked; the
ledger's own arithmetic is tests/unit/test_ledger.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from olmoctl.backends.slurm import SlurmBackend
from olmoctl.core.launch import submit as launch
from olmoctl.core.plan import inputs
from olmoctl.core.plan.predict import predict
from olmoctl.store import Store

# dev has no peak FLOPs or GPU memory (plan refuses it): these make it plannable.
FIGURES = ["cluster.peak_tflops_bf16=989", "cluster.gpu_memory_gb=80"]


class FakeBackend(SlurmBackend):
    def __init__(self) -> None:
        self.next_id = 100

    def check_reachable(self, spec: Any) -> None:
        return None

    def submit(self, spec: Any, script: str) -> tuple[str, str]:
        self.next_id += 1
        return str(self.next_id), script


def _run(tmp_path: Path, *extra: str) -> None:
    """r1: submitted 1000, started 1010, burn-in 1012-1020, `started` 1030, steps to 30
    with a 5 s sync save at step 20, completed at 1072: the clean run of test_ledger."""
    store = Store()
    overrides = [f"cluster.runs_root={tmp_path / 'runs'}", *extra]
    spec = launch.prepare(
        store, "tiny", "dev", nodes=1, name="r1", time_limit=None, overrides=overrides
    )
    done = launch.submit_attempt(store, spec, FakeBackend(), new_run=True)
    with store.tx() as tx:
        for a in tx.attempts("r1"):
            tx.update_attempt(
                a.id,
                state="COMPLETED",
                klass="COMPLETED",
                submitted_at=1000,
                started_at=1010,
                ended_at=1072,
            )
    store.close()
    job = str(done.job_id)
    evs = [
        {"ts": 1020, "event": "burnin", "job_id": job, "attempt": 0, "seconds": 8},
        {"ts": 1030, "event": "started", "job_id": job, "attempt": 0, "start_step": 0},
        {"ts": 1040, "event": "step", "step": 10, "loss": 3.0},
        {"ts": 1050, "event": "step", "step": 20, "loss": 2.0},
        {"ts": 1055, "event": "checkpoint_saved", "step": 20, "seconds": 5, "mode": "sync"},
        {"ts": 1065, "event": "step", "step": 30, "loss": 1.0},
        {"ts": 1070, "event": "exiting", "reason": "completed", "step": 30},
    ]
    run_dir = tmp_path / "runs" / "r1"
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))


WANT = {"queued": 10, "starting": 12, "burnin": 8, "productive": 30, "checkpoint": 5, "idle": 7}


def test_status_shows_the_ledger_and_plans_prediction(cli, tmp_path: Path) -> None:
    _run(tmp_path, *FIGURES)
    res = cli("status", "r1", "--json")
    assert res.code == 0, res.err
    led = json.loads(res.out)["ledger"]
    assert led["wall_s"] == 72 and led["since"] == 1000 and led["until"] == 1072
    assert {k: v for k, v in led["seconds"].items() if v} == WANT
    pred = led["predicted"]
    assert pred["mfu_source"].startswith("default")  # the run logged no MFU
    assert sum(pred["shares"].values()) == pytest.approx(1)
    assert 0 < pred["simulated_goodput"]["mean"] <= 1

    res = cli("status", "r1")
    assert res.code == 0, res.err
    line = next(x for x in res.out.splitlines() if x.startswith("time since submission"))
    for part in ("(72 s)", "queued 10 s (14%)", "burn-in 8 s", "productive 30 s (42%)",
                 "checkpoint stall 5 s", "hung/idle 7 s"):  # fmt: skip
        assert part in line, line
    assert "redone" not in line  # categories that hold no time are left out
    assert any(x.startswith("plan predicted (MFU 0.40") for x in res.out.splitlines())


def test_status_says_why_plan_predicts_nothing(cli, tmp_path: Path) -> None:
    _run(tmp_path)
    res = cli("status", "r1", "--json")
    assert res.code == 0, res.err
    pred = json.loads(res.out)["ledger"]["predicted"]
    assert "peak_tflops_bf16 is 0.0" in pred["unavailable"]
    res = cli("status", "r1")  # the text leaves it out: every dev and local run has none
    assert "time since submission" in res.out and "plan predict" not in res.out


def test_card_has_the_ledger_table_and_bar(cli, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _run(tmp_path, *FIGURES)
    out = tmp_path / "card"
    res = cli("card", "r1", "--out", str(out))
    assert res.code == 0, res.err
    card = json.loads((out / "r1.json").read_text())
    assert {k: v for k, v in card["ledger"]["seconds"].items() if v} == WANT
    md = (out / "r1.md").read_text()
    assert "## Goodput ledger" in md
    assert "| productive | 30.0 | 41.7% |" in md and "| **wall time** | 72.0 | 100% | |" in md
    assert "plan --simulate: goodput" in md
    assert card["ledger_plot"] == "r1-ledger.png" and "![goodput ledger](r1-ledger.png)" in md
    png = (out / "r1-ledger.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_predict_in_the_ledgers_words() -> None:
    recipe, cluster = inputs.load("1b", "h100", ["cluster.account=x"])
    p = predict(recipe, cluster, 8, mfu=0.4, seeds=4)
    assert set(p["shares"]) == {"productive", "checkpoint", "redone", "restart", "queued"}
    assert sum(p["shares"].values()) == pytest.approx(1)
    assert p["async_saves"] is True and p["simulated_goodput"]["seeds"] == 4
    recipe, cluster = inputs.load("tiny", "dev")
    assert "unavailable" in predict(recipe, cluster, 1)
