"""What the launcher makes of in-loop evaluation: `status RUN` (text and --json) shows the
latest eval loss, the run card plots train and eval loss (scheduler faked; the real job's
events are in tests/train/test_eval_e2e.py and tests/integration/test_eval_local.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from olmoctl.backends.slurm import SlurmBackend
from olmoctl.core.launch import submit as launch
from olmoctl.core.outputs.card import final_evals
from olmoctl.core.track import events as ev
from olmoctl.store import Store


class FakeBackend(SlurmBackend):
    def __init__(self) -> None:
        self.next_id = 100

    def check_reachable(self, spec: Any) -> None:
        return None

    def submit(self, spec: Any, script: str) -> tuple[str, str]:
        self.next_id += 1
        return str(self.next_id), script


def _job_events(run_dir: Path) -> None:
    """Two attempts: 1-12 (evals at 5 and 10, checkpoint at 5; killed at 12), then a resume
    from 5 that trains 6-20 (evals at 10 again, 15, 20)."""
    evs: list[dict[str, Any]] = []
    t = 1000.0

    def add(kind: str, **kw: Any) -> None:
        nonlocal t
        t += 1
        evs.append({"ts": t, "event": kind, **kw})

    def evals(step: int, shift: float) -> None:
        for name, base in (("c4", 4.0), ("held_out", 3.0)):
            loss = base - step / 10 + shift
            add("eval", step=step, name=name, loss=loss, perplexity=math.exp(loss), seconds=0.5)

    add("started", start_step=0, attempt=0)
    for s in range(1, 13):
        add("step", step=s, loss=5.0 - s / 10)
        if s % 5 == 0:
            evals(s, 0.0)
        if s == 5:
            add("checkpoint_saved", step=s)
    add("started", start_step=5, attempt=1)
    for s in range(6, 21):
        add("step", step=s, loss=5.0 - s / 10)
        if s % 5 == 0:
            evals(s, 0.01)
    add("exiting", reason="completed", exit_status=0, step=20)
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))


def test_status_shows_the_latest_eval_and_the_card_plots_it(cli, tmp_path: Path) -> None:
    store = Store()
    overrides = [
        f"cluster.runs_root={tmp_path / 'runs'}",
        "eval.interval_steps=5",
        "eval.held_out_fraction=0.05",
    ]
    spec = launch.prepare(
        store, "tiny", "dev", nodes=1, name="r1", time_limit=None, overrides=overrides
    )
    assert spec.recipe.eval is not None and spec.recipe.eval.held_out_fraction == 0.05
    launch.submit_attempt(store, spec, FakeBackend(), new_run=True)
    store.close()
    run_dir = tmp_path / "runs" / "r1"
    _job_events(run_dir)

    res = cli("status", "r1", "--json")
    assert res.code == 0, res.err
    d = json.loads(res.out)
    assert d["eval_step"] == 20
    assert d["eval_loss"] == {"c4": 4.0 - 2.0 + 0.01, "held_out": 3.0 - 2.0 + 0.01}
    res = cli("status", "r1")
    assert res.code == 0, res.err
    line = next(x for x in res.out.splitlines() if x.startswith("eval at step 20"))
    assert "c4 2.0100 (perplexity 7.46)" in line and "held_out 1.0100" in line

    out = tmp_path / "card"
    res = cli("card", "r1", "--out", str(out))
    assert res.code == 0, res.err
    card = json.loads((out / "r1.json").read_text())
    # The eval at 10 ran twice (before and after the resume from 5): the last one counts.
    assert [s for s, _ in card["eval_losses"]["c4"]] == [5, 10, 15, 20]
    assert dict(card["eval_losses"]["held_out"])[10] == 3.0 - 1.0 + 0.01
    md = (out / "r1.md").read_text()
    assert "![training and eval loss](r1-loss.png)" in md
    assert "| c4 | 20 | 2.0100 | 7.463 |" in md
    assert (out / "r1-loss.png").stat().st_size > 10_000


def test_summary_and_final_evals_of_events(tmp_path: Path) -> None:
    _job_events(tmp_path)
    events = ev.read_events(tmp_path, None)
    s = ev.summarize(events)
    assert s.eval_step == 20 and set(s.eval_loss or {}) == {"c4", "held_out"}
    assert s.to_dict()["eval_loss"] == s.eval_loss
    fe = final_evals(events)
    assert [step for step, _ in fe["held_out"]] == [5, 10, 15, 20]
    # A run stopped after an eval whose step a later attempt has not reached again: the
    # card leaves it out, as it leaves out the losses of steps trained again.
    cut = events[: next(i for i, e in enumerate(events) if e.event == "started" and i > 0) + 3]
    assert [step for step, _ in final_evals(cut)["c4"]] == [5]
