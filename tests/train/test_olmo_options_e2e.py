"""The options the paper recipes take from OLMo's configs (mitchell init, clip warmup, no
weight decay on the embedding, a decay horizon before the last step), end to end on two
FSDP2 ranks: the run trains, and resuming from step 10 (the clip threshold and the learning
rate change after it) is bitwise identical to running straight through."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoctl.schemas.recipe import Recipe
from olmoctl.train.model.optim import lr_at
from tests.train.helpers import (
    RESUME_RECIPE,
    assert_bitwise,
    copy_at_step_10,
    events,
    first,
    launch,
    logs,
    losses,
    tiny,
    wait_all,
    write_spec,
)

pytestmark = pytest.mark.slow

OLMO_OPTIONS = {
    **RESUME_RECIPE,
    "model.init": "mitchell",
    "optim.decay_embeddings": False,
    "optim.clip_warmup_steps": 15,  # steps 0-14 clip at 0.5, then at 1.0
    "optim.clip_warmup_factor": 0.5,
    "schedule.decay": "cosine",
    "schedule.decay_steps": 15,  # at the floor from step 15 on, 5 steps before the end
}


def test_olmo_options_train_and_resume_bitwise(tmp_path: Path) -> None:
    recipe = tiny(**OLMO_OPTIONS)
    ref_dir = tmp_path / "ref"
    spec = write_spec(ref_dir, recipe)
    assert wait_all(launch(spec, 2, log_dir=tmp_path / "logs")) == [0, 0], logs(tmp_path / "logs")
    ref_events = events(ref_dir)
    ref = losses(ref_events)
    assert sorted(ref) == list(range(1, 21))
    r = Recipe.model_validate(recipe)
    lrs = {e["step"]: e["lr"] for e in ref_events if e["event"] == "step"}
    for step, lr in lrs.items():  # event step n reports optimizer step n - 1 (0-based)
        assert lr == pytest.approx(lr_at(step - 1, r.optim.lr, r.schedule, 20)), step
    assert lrs[16] == lrs[20] == pytest.approx(r.optim.lr * r.schedule.final_lr_ratio)

    resumed = tmp_path / "resumed"
    spec = copy_at_step_10(ref_dir, resumed, recipe)
    assert wait_all(launch(spec, 2, log_dir=tmp_path / "logs")) == [0, 0], logs(tmp_path / "logs")
    evs = events(resumed)
    assert first(evs, "started")["start_step"] == 10
    assert_bitwise(losses(evs), ref, from_step=11)
