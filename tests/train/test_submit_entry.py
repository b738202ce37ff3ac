"""The submitit entry the launcher submits, run by submitit's LocalExecutor: a USR2 in the
middle of the run saves at the step boundary and the task exits with EXIT_REQUEUE (42),
leaving rank 0's requeue mark and no result (requeueing is the batch script's, on the host;
submitit's own requeue is not used); the same submission run again finishes from the
checkpoint."""

from __future__ import annotations

import json
import os
import pickle
import signal
from pathlib import Path

import pytest

from olmoctl.train.runtime.faults import ENV as FAULTS_ENV
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


def test_usr2_under_submitit_exits_42_and_the_same_call_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import submitit

    from olmoctl.schemas.contract import REQUEUE_READY

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
    poll(job.done, "the stopped task to exit")
    # Exited (42) without a result: the job is not over, nothing requeued it from inside.
    assert not job.paths.result_pickle.exists()
    with pytest.raises(submitit.core.utils.UncompletedJobError):
        job.result()
    assert json.loads((run_dir / REQUEUE_READY).read_text()) == {"step": 4, "signal": "SIGUSR2"}

    again = executor.submit(TrainJob(), str(spec))  # what the requeued job runs
    assert again.result() == {"exit_status": 0, "reason": "completed", "step": 12}
    evs = events(run_dir)
    started = [e for e in evs if e["event"] == "started"]
    assert [s["start_step"] for s in started] == [0, 4]
    exits = [(e["reason"], e["exit_status"], e["step"]) for e in evs if e["event"] == "exiting"]
    assert exits == [("preempted", 42, 4), ("completed", 0, 12)]
    assert [e["signal"] for e in evs if e["event"] == "signal_received"] == ["SIGUSR2"]
