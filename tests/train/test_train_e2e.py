"""The job end to end on CPU/gloo: ranks are real processes (srun's or torchrun's
environment), checkpoints and events are read back from the run directory."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from olmoctl.train.checkpoint.dcp import list_complete, newest_complete
from olmoctl.train.runtime.exit_codes import EXIT_COMPLETED, EXIT_REQUEUE
from olmoctl.train.runtime.faults import ENV as FAULTS_ENV
from olmoctl.train.runtime.faults import STALLED_FILE
from tests.train.helpers import (
    RESUME_RECIPE,
    assert_bitwise,
    copy_at_step_10,
    events,
    first,
    launch,
    logs,
    losses,
    poll,
    tiny,
    torchrun,
    wait_all,
    write_spec,
)

pytestmark = pytest.mark.slow


def run(spec: Path, nprocs: int, log_dir: Path, **kw: Any) -> list[int]:
    codes = wait_all(launch(spec, nprocs, log_dir=log_dir, **kw))
    return codes


def check_event_fields(evs: list[dict[str, Any]]) -> None:
    kinds = {e["event"] for e in evs}
    assert {"started", "step", "checkpoint_saved", "exiting"} <= kinds, kinds
    started = next(e for e in evs if e["event"] == "started")
    for key in ("job_id", "attempt", "nodes", "world_size", "start_step", "checkpoint_loaded"):
        assert key in started, key
    assert set(started["versions"]) >= {"python", "torch", "cuda", "rocm"}
    assert started["devices"]["type"] == "cpu"
    step = next(e for e in evs if e["event"] == "step")
    assert set(step) >= {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu"}
    saved = next(e for e in evs if e["event"] == "checkpoint_saved")
    assert set(saved) >= {"step", "path", "seconds", "bytes"} and saved["bytes"] > 0
    last = evs[-1]
    assert last["event"] == "exiting" and set(last) >= {"reason", "exit_status", "step"}


def assert_falls(ls: dict[int, float]) -> tuple[float, float]:
    first = float(np.mean([ls[s] for s in range(1, 11)]))
    last = float(np.mean([ls[s] for s in range(191, 201)]))
    assert first - last > 1.5, (first, last)
    return first, last


def test_tiny_loss_falls_in_one_process(tmp_path: Path) -> None:
    run_dir = tmp_path / "one"
    spec = write_spec(
        run_dir,
        tiny(**{"train.max_steps": 200, "train.micro_batch_size": 48,
                "checkpoint.interval_steps": 100}),
    )  # fmt: skip
    assert run(spec, 1, tmp_path / "logs") == [EXIT_COMPLETED], logs(tmp_path / "logs")
    evs = events(run_dir)
    check_event_fields(evs)
    head, tail = assert_falls(losses(evs))
    print(f"1 process: loss {head:.3f} -> {tail:.3f}")
    assert evs[-1] | {"ts": 0} == {
        "ts": 0, "event": "exiting", "reason": "completed", "exit_status": 0, "step": 200,
    }  # fmt: skip
    assert [c.step for c in list_complete(run_dir / "checkpoints")] == [100, 200]
    assert (run_dir / "global_indices.npy").is_file()
    assert any(e["event"] == "heartbeat" for e in evs)


def test_tiny_loss_falls_in_two_processes_under_torchrun(tmp_path: Path) -> None:
    # Hybrid shard (2 replicas x shard groups of 1) with activation checkpointing; the
    # reference run below covers full shard.
    run_dir = tmp_path / "two"
    spec = write_spec(
        run_dir,
        tiny(**{"train.max_steps": 200, "train.micro_batch_size": 24,
                "checkpoint.interval_steps": 200, "fsdp.strategy": "hybrid",
                "fsdp.shard_group_size": 1, "fsdp.activation_checkpointing": True}),
    )  # fmt: skip
    assert wait_all([torchrun(spec, 2, log_dir=tmp_path / "logs")]) == [0], logs(tmp_path / "logs")
    evs = events(run_dir)
    check_event_fields(evs)
    started = first(evs, "started")
    assert started["world_size"] == 2 and started["launcher"] == "torchrun"
    head, tail = assert_falls(losses(evs))
    print(f"2 processes: loss {head:.3f} -> {tail:.3f}")


def test_reference_run(reference: Path) -> None:
    evs = events(reference)
    check_event_fields(evs)
    started = first(evs, "started")
    assert started["launcher"] == "slurm" and started["world_size"] == 2
    assert started["grad_accum_steps"] == 2
    assert sorted(losses(evs)) == list(range(1, 21))


def test_resume_from_step_10_is_bitwise_identical(reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "resumed"
    spec = copy_at_step_10(reference, run_dir, tiny(**RESUME_RECIPE))
    assert run(spec, 2, tmp_path / "logs") == [0, 0], logs(tmp_path / "logs")
    evs = events(run_dir)
    started = first(evs, "started")
    assert started["start_step"] == 10
    assert started["checkpoint_loaded"].endswith("step_00000010")
    assert_bitwise(losses(evs), losses(events(reference)), from_step=11)


def test_sigusr2_saves_at_the_step_boundary_and_resumes_bitwise(
    reference: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "usr2"
    spec = write_spec(run_dir, tiny(**RESUME_RECIPE))
    gate = tmp_path / "gate"
    faults = f'{{"pause_after_step": 5, "gate": "{gate}"}}'
    procs = launch(spec, 2, log_dir=tmp_path / "logs", extra_env={FAULTS_ENV: faults})
    waiting = [Path(f"{gate}.waiting.{r}") for r in (0, 1)]
    poll(lambda: all(w.exists() for w in waiting), "both ranks paused after step 5")
    # Only rank 1 gets the signal: the stop is agreed by all-reduce at the boundary.
    os.kill(procs[1].pid, signal.SIGUSR2)
    gate.touch()
    assert wait_all(procs) == [EXIT_REQUEUE, EXIT_REQUEUE], logs(tmp_path / "logs")
    evs = events(run_dir)
    assert newest_complete(run_dir / "checkpoints").step == 5
    assert [e["signal"] for e in evs if e["event"] == "signal_received"] == ["SIGUSR2"]
    assert evs[-1]["event"] == "exiting"
    assert (evs[-1]["reason"], evs[-1]["exit_status"], evs[-1]["step"]) == ("preempted", 42, 5)

    assert run(spec, 2, tmp_path / "logs") == [0, 0], logs(tmp_path / "logs")
    evs = events(run_dir)
    assert [e["start_step"] for e in evs if e["event"] == "started"] == [0, 5]
    assert_bitwise(losses(evs, after_last_start=True), losses(events(reference)), from_step=6)


def test_checkpoint_of_two_ranks_loads_in_one(reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "reshard"
    spec = copy_at_step_10(reference, run_dir, tiny(**RESUME_RECIPE))
    indices_before = (run_dir / "global_indices.npy").read_bytes()
    assert run(spec, 1, tmp_path / "logs") == [0], logs(tmp_path / "logs")
    evs = events(run_dir)
    started = first(evs, "started")
    assert (started["world_size"], started["start_step"]) == (1, 10)
    assert (run_dir / "global_indices.npy").read_bytes() == indices_before
    ref, got = losses(events(reference)), losses(evs)
    assert sorted(got) == list(range(11, 21))
    # Same weights, optimizer state and batches; only the summation order differs.
    for s in got:
        assert got[s] == pytest.approx(ref[s], rel=2e-4), (s, got[s], ref[s])


def test_sigkill_in_the_middle_of_saves(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    recipe = tiny(**{"train.max_steps": 30, "train.micro_batch_size": 48,
                     "checkpoint.interval_steps": 10})  # fmt: skip
    spec = write_spec(run_dir, recipe)
    root = run_dir / "checkpoints"
    for where in ("before_rename", "before_marker"):
        (root / STALLED_FILE).unlink(missing_ok=True)
        faults = f'{{"stall_save_step": 20, "stall_at": "{where}"}}'
        (proc,) = launch(spec, 1, log_dir=tmp_path / "logs", extra_env={FAULTS_ENV: faults})
        stalled = poll(lambda: (root / STALLED_FILE).exists(), f"the save stalled {where}")
        assert stalled
        t_stall = (root / STALLED_FILE).stat().st_mtime
        # The heartbeat thread keeps writing while the save is stuck.
        poll(
            lambda t=t_stall: any(
                e["event"] == "heartbeat" and e["ts"] > t for e in events(run_dir)
            ),
            "a heartbeat during the stalled save",
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert newest_complete(root).step == 10
        assert [c.step for c in list_complete(root)] == [10]
        events(run_dir)  # every line still valid JSON
    assert (root / "step_00000020").is_dir()  # torn: renamed, no marker

    assert run(spec, 1, tmp_path / "logs") == [0], logs(tmp_path / "logs")
    evs = events(run_dir)
    started = [e for e in evs if e["event"] == "started"]
    assert [s["start_step"] for s in started] == [0, 10, 10]
    assert started[-1]["checkpoint_loaded"].endswith("step_00000010")
    assert [c.step for c in list_complete(root)] == [10, 20, 30]
    assert not any(p.name.startswith(".tmp-") for p in root.iterdir())
