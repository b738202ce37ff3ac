"""The submitit entry the launcher submits, run by submitit's LocalExecutor: a USR2 in the
middle of the run saves at the step boundary, submitit's checkpoint/requeue machinery
restarts the task, and the second attempt finishes from the checkpoint."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest

from olmoctl.train.faults import ENV as FAULTS_ENV
from olmoctl.train.submit_entry import TrainJob
from tests.train.helpers import HANG_GUARD_S, events, poll, tiny, write_spec

pytestmark = pytest.mark.slow


def test_checkpoint_returns_a_resubmission_of_the_same_spec() -> None:
    import submitit

    delayed = TrainJob().checkpoint("/runs/x/spec.json")
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert isinstance(delayed.function, TrainJob) and delayed.args == ("/runs/x/spec.json",)
    # submitit pickles the callable by reference: it must come back from its module.
    assert type(pickle.loads(pickle.dumps(TrainJob()))) is TrainJob


def test_usr2_under_submitit_requeues_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import submitit

    run_dir = tmp_path / "run"
    spec = write_spec(
        run_dir,
        tiny(**{"train.max_steps": 12, "train.micro_batch_size": 48,
                "checkpoint.interval_steps": 100}),
    )  # fmt: skip
    gate = tmp_path / "gate"
    monkeypatch.setenv(FAULTS_ENV, f'{{"pause_after_step": 4, "gate": "{gate}"}}')
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    executor = submitit.LocalExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(timeout_min=int(HANG_GUARD_S // 60), tasks_per_node=1, nodes=1)
    job = executor.submit(TrainJob(), str(spec))
    waiting = Path(f"{gate}.waiting.0")
    poll(lambda: waiting.exists() or job.done(), "the task to pause after step 4")
    assert waiting.exists(), job.stderr()
    os.kill(int(waiting.read_text()), signal.SIGUSR2)
    gate.touch()
    result = job.result()
    assert result == {"exit_status": 0, "reason": "completed", "step": 12}, job.stderr()
    evs = events(run_dir)
    started = [e for e in evs if e["event"] == "started"]
    assert [s["start_step"] for s in started] == [0, 4]
    exits = [(e["reason"], e["exit_status"], e["step"]) for e in evs if e["event"] == "exiting"]
    assert exits == [("preempted", 42, 4), ("completed", 0, 12)]
    assert [e["signal"] for e in evs if e["event"] == "signal_received"] == ["SIGUSR2"]
