"""In-loop evaluation and the metrics sinks, end to end on CPU/gloo: real ranks, real
TensorBoard and W&B (offline) files read back with their own readers."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from olmoctl.train.checkpoint.dcp import newest_complete
from olmoctl.train.data.corpus import generate_documents
from olmoctl.train.data.tokenize import tokenize_documents, write_tokens
from olmoctl.train.observe.sinks import wandb_id
from olmoctl.train.runtime.exit_codes import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_REQUEUE
from olmoctl.train.runtime.faults import ENV as FAULTS_ENV
from tests.train.helpers import (
    RESUME_RECIPE,
    events,
    launch,
    logs,
    losses,
    poll,
    tiny,
    wait_all,
    write_spec,
)
from tests.train.sink_files import tb_scalars, wandb_history, wandb_run

pytestmark = pytest.mark.slow

EVAL_STEPS = [5, 10, 15, 20]
METRICS = {"tensorboard": True, "wandb": {"project": "olmoctl-tests"}}


def eval_recipe(val: Path, **extra: Any) -> dict[str, Any]:
    """The reference recipe + an eval set every 5 steps + both sinks."""
    return tiny(
        **RESUME_RECIPE,
        eval={"interval_steps": 5, "paths": {"val": [str(val)]}, "batches": 2},
        metrics=METRICS,
        **extra,
    )


def write_val(path: Path) -> Path:
    """An eval file from another seed of the corpus: ~300 instances of 64 tokens."""
    return write_tokens(tokenize_documents(generate_documents(20_000, seed=1)), path)


def steps(evs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {e["step"]: e for e in evs if e["event"] == "step"}


def evals(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in evs if e["event"] == "eval"]


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference run again (2 ranks, 20 steps), with eval and both sinks on."""
    base = tmp_path_factory.mktemp("eval")
    val = write_val(base / "val.npy")
    spec = write_spec(base / "ev", eval_recipe(val))
    assert wait_all(launch(spec, 2, log_dir=base / "logs")) == [0, 0], logs(base / "logs")
    return base / "ev"


def test_eval_leaves_training_bitwise_unchanged(reference: Path, eval_run: Path) -> None:
    ref, got = steps(events(reference)), steps(events(eval_run))
    assert sorted(got) == list(range(1, 21))
    for s in got:  # ==, not approx: eval must not touch RNG, gradients, FSDP state...
        assert (got[s]["loss"], got[s]["grad_norm"], got[s]["lr"]) == (
            ref[s]["loss"],
            ref[s]["grad_norm"],
            ref[s]["lr"],
        ), s
    ev = evals(events(eval_run))
    assert [(e["step"], e["name"]) for e in ev] == [(s, "val") for s in EVAL_STEPS]
    for e in ev:
        assert e["perplexity"] == pytest.approx(math.exp(e["loss"]), rel=1e-12)
        assert e["batches"] == 2 and e["tokens"] == 2 * 48 * 63
        assert e["seconds"] > 0
    assert ev[-1]["loss"] < ev[0]["loss"] - 0.5  # the model learns the eval set's language


def test_stop_at_an_eval_and_save_step_resumes_with_each_eval_once(
    eval_run: Path, tmp_path: Path
) -> None:
    """Step 10 is an eval step, a checkpoint step and the step a SIGUSR2 stops at: the eval
    comes first, so the checkpoint at 10 follows it and the resume evaluates at 15 next."""
    run_dir = tmp_path / "usr2"
    spec = write_spec(run_dir, eval_recipe(write_val(tmp_path / "val.npy")))
    gate = tmp_path / "gate"
    faults = json.dumps({"pause_after_step": 10, "gate": str(gate)})
    procs = launch(spec, 2, log_dir=tmp_path / "logs", extra_env={FAULTS_ENV: faults})
    poll(lambda: all(Path(f"{gate}.waiting.{r}").exists() for r in (0, 1)), "ranks at step 10")
    os.kill(procs[0].pid, signal.SIGUSR2)
    gate.touch()
    assert wait_all(procs) == [EXIT_REQUEUE, EXIT_REQUEUE], logs(tmp_path / "logs")
    assert newest_complete(run_dir / "checkpoints").step == 10
    assert [e["step"] for e in evals(events(run_dir))] == [5, 10]

    assert wait_all(launch(spec, 2, log_dir=tmp_path / "logs")) == [0, 0], logs(tmp_path / "logs")
    evs = events(run_dir)
    assert [e["start_step"] for e in evs if e["event"] == "started"] == [0, 10]
    got = evals(evs)
    assert [e["step"] for e in got] == EVAL_STEPS  # none repeated, none skipped
    want = {e["step"]: e["loss"] for e in evals(events(eval_run))}
    assert {e["step"]: e["loss"] for e in got} == want  # bitwise, across the restart
    ref = losses(events(eval_run))
    assert losses(evs) == ref

    tb = tb_scalars(run_dir / "tensorboard")  # two event files, one per attempt
    assert [s for s, _ in tb["train/loss"]] == list(range(1, 21))
    assert [s for s, _ in tb["eval/val/loss"]] == EVAL_STEPS
    offline = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 2  # one per attempt, under the run's one id
    assert {wandb_run(d)["run_id"] for d in offline} == {wandb_id(run_dir.name, run_dir)}
    assert [sorted(wandb_history(d)) for d in offline] == [
        list(range(1, 11)),
        list(range(11, 21)),
    ]


def test_tensorboard_and_wandb_hold_what_events_hold(eval_run: Path) -> None:
    evs = events(eval_run)
    st, ev = steps(evs), {e["step"]: e for e in evals(evs)}
    # Rank 0 only: one event file and one offline run for the two ranks.
    assert len(list((eval_run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    tb = tb_scalars(eval_run / "tensorboard")
    for key in ("loss", "lr", "tokens_per_s", "grad_norm", "tokens_seen"):
        assert [s for s, _ in tb[f"train/{key}"]] == list(range(1, 21)), key
        for s, v in tb[f"train/{key}"]:  # TensorBoard keeps float32
            assert v == pytest.approx(st[s][key], rel=1e-6), (key, s)
    assert "train/mfu" not in tb  # null without a peak_tflops_bf16: not logged
    for key in ("loss", "perplexity"):
        assert [s for s, _ in tb[f"eval/val/{key}"]] == EVAL_STEPS
        for s, v in tb[f"eval/val/{key}"]:
            assert v == pytest.approx(ev[s][key], rel=1e-6)

    (offline,) = (eval_run / "wandb").glob("offline-run-*")
    run = wandb_run(offline)
    assert run["run_id"] == wandb_id(eval_run.name, eval_run)
    assert run["project"] == "olmoctl-tests"
    hist = wandb_history(offline)
    assert sorted(hist) == list(range(1, 21))
    for s, row in hist.items():  # JSON doubles: exact
        for key in ("loss", "lr", "tokens_per_s", "grad_norm", "tokens_seen"):
            assert row[f"train/{key}"] == st[s][key], (key, s)
        if s in ev:
            assert row["eval/val/loss"] == ev[s]["loss"]
            assert row["eval/val/perplexity"] == ev[s]["perplexity"]
        else:
            assert "eval/val/loss" not in row


def test_held_out_split_is_never_trained_and_the_same_after_a_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "held"
    recipe = tiny(**{"train.max_steps": 10, "train.micro_batch_size": 48,
                     "checkpoint.interval_steps": 5, "checkpoint.keep_last": 5,
                     "eval": {"interval_steps": 5, "held_out_fraction": 0.05, "batches": 2},
                     "metrics": {"tensorboard": True}})  # fmt: skip
    spec = write_spec(run_dir, recipe)
    assert wait_all(launch(spec, 1, log_dir=tmp_path / "logs")) == [0], logs(tmp_path / "logs")
    held = np.load(run_dir / "held_out_indices.npy")
    order = np.load(run_dir / "global_indices.npy")
    meta = json.loads((run_dir / "global_indices.json").read_text())
    n = meta["num_instances"]
    assert meta["held_out"] == held.size == int(n * 0.05) > 2 * 48
    assert not np.isin(order, held).any()  # training never sees a held-out instance
    assert np.array_equal(np.union1d(np.unique(order), held), np.arange(n))
    first = {e["step"]: e["loss"] for e in evals(events(run_dir))}
    assert sorted(first) == [5, 10] and {e["name"] for e in evals(events(run_dir))} == {"held_out"}

    # A save at 10 torn after the eval at 10 ran: the resume from 5 trains 6-10 again and
    # evaluates at 10 again (the eval belongs to the recomputed step), on the same split.
    before = [(run_dir / f).read_bytes() for f in ("held_out_indices.npy", "global_indices.npy")]
    shutil.rmtree(run_dir / "checkpoints" / "step_00000010")
    assert wait_all(launch(spec, 1, log_dir=tmp_path / "logs")) == [0], logs(tmp_path / "logs")
    after = [(run_dir / f).read_bytes() for f in ("held_out_indices.npy", "global_indices.npy")]
    assert after == before
    again = evals(events(run_dir))[len(first) :]
    assert [(e["step"], e["loss"]) for e in again] == [(10, first[10])]
    tb = tb_scalars(run_dir / "tensorboard")  # the first attempt's steps 6-10 are purged
    assert [s for s, _ in tb["train/loss"]] == list(range(1, 11))
    assert [s for s, _ in tb["eval/held_out/loss"]] == [5, 10]

    # The split is part of the run's data order: another fraction is refused.
    recipe["eval"]["held_out_fraction"] = 0.1
    spec = write_spec(run_dir, recipe)
    (proc,) = launch(spec, 1, log_dir=tmp_path / "bad")
    assert wait_all([proc]) == [EXIT_BAD_INPUT]
    err = (tmp_path / "bad" / "rank0.log").read_text()
    assert "another held-out split (held_out" in err and "Traceback" not in err


def test_a_failing_sink_is_one_warning_and_training_goes_on(tmp_path: Path) -> None:
    run_dir = tmp_path / "sinkfail"
    spec = write_spec(
        run_dir,
        tiny(**{"train.max_steps": 3, "train.micro_batch_size": 48, "metrics": METRICS}),
    )
    # Disk errors: each sink's directory is taken by a file.
    (run_dir / "tensorboard").write_text("not a directory")
    (run_dir / "wandb").write_text("not a directory")
    assert wait_all(launch(spec, 1, log_dir=tmp_path / "logs")) == [EXIT_COMPLETED], logs(
        tmp_path / "logs"
    )
    evs = events(run_dir)
    warnings = [e for e in evs if e["event"] == "warning"]
    assert sorted(w["source"] for w in warnings) == ["tensorboard", "wandb"]
    assert all("off for the rest of this attempt" in w["message"] for w in warnings)
    assert sorted(steps(evs)) == [1, 2, 3] and evs[-1]["reason"] == "completed"
