"""Asynchronous checkpoints, retention and a full disk, end to end on CPU/gloo: real ranks
(1 process, and 2 with srun's environment), real DCP files, a real SIGKILL, a real small
filesystem (a size-limited tmpfs mounted over the run's checkpoints folder)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from olmoctl.schemas.contract import CHECKPOINT_TMP_PREFIX, COMPLETE_MARKER
from olmoctl.train.checkpoint.dcp import list_complete, newest_complete
from olmoctl.train.runtime.exit_codes import EXIT_COMPLETED, EXIT_REQUEUE, EXIT_STORAGE
from olmoctl.train.runtime.faults import ENV as FAULTS_ENV
from olmoctl.train.runtime.faults import STALLED_FILE
from tests.train.helpers import events, launch, logs, losses, poll, tiny, wait_all, write_spec

pytestmark = pytest.mark.slow

# Saves at 5, 10, 15, 20; 10 and 20 are permanent; one ephemeral kept (so 5 is deleted
# once 15 is committed). Micro-batch 12: 4 accumulation steps in 1 process, 2 in 2.
RECIPE = {
    "train.max_steps": 20,
    "train.micro_batch_size": 12,
    "checkpoint.interval_steps": 5,
    "checkpoint.keep_last": 1,
    "checkpoint.permanent_interval_steps": 10,
    "checkpoint.async": True,
}


def run(spec: Path, nprocs: int, log_dir: Path, **kw: Any) -> list[int]:
    return wait_all(launch(spec, nprocs, log_dir=log_dir, **kw))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Uninterrupted async runs in 1 and 2 processes."""
    out = {}
    for world in (1, 2):
        base = tmp_path_factory.mktemp(f"async-ref-{world}")
        spec = write_spec(base / "ref", tiny(**RECIPE))
        assert run(spec, world, base / "logs") == [0] * world, logs(base / "logs")
        out[world] = base / "ref"
    return out


def assert_same_losses(got: dict[int, float], ref: dict[int, float], first: int) -> None:
    assert sorted(got) == list(range(first, 21))
    assert all(got[s] == ref[s] for s in got), [(s, got[s], ref[s]) for s in got]


@pytest.mark.parametrize("world", [1, 2])
def test_async_saves_keep_the_permanent_and_the_last(reference: dict[int, Path], world: int):
    run_dir = reference[world]
    evs = events(run_dir)
    saved = [e for e in evs if e["event"] == "checkpoint_saved"]
    assert [(e["step"], e["mode"], e["permanent"]) for e in saved] == [
        (5, "async", False), (10, "async", True), (15, "async", False), (20, "async", True),
    ]  # fmt: skip
    assert all(e["stall_s"] >= 0 and e["seconds"] > 0 and e["bytes"] > 0 for e in saved)
    root = run_dir / "checkpoints"
    assert [c.step for c in list_complete(root)] == [10, 15, 20]
    assert [c.marker["permanent"] for c in list_complete(root)] == [True, False, True]
    assert sorted(p.name for p in root.iterdir()) == [
        "step_00000010", "step_00000015", "step_00000020",
    ]  # fmt: skip
    assert evs[-1]["event"] == "exiting" and evs[-1]["exit_status"] == EXIT_COMPLETED


@pytest.mark.parametrize("world", [1, 2])
def test_resume_from_an_async_checkpoint_is_bitwise_identical(
    reference: dict[int, Path], tmp_path: Path, world: int
) -> None:
    run_dir = tmp_path / "resumed"
    shutil.copytree(reference[world], run_dir)
    for step in (15, 20):
        shutil.rmtree(run_dir / "checkpoints" / f"step_{step:08d}")
    (run_dir / "events.jsonl").unlink()
    spec = write_spec(run_dir, tiny(**RECIPE))
    assert run(spec, world, tmp_path / "logs") == [0] * world, logs(tmp_path / "logs")
    evs = events(run_dir)
    started = next(e for e in evs if e["event"] == "started")
    assert started["checkpoint_loaded"].endswith("step_00000010")
    assert_same_losses(losses(evs), losses(events(reference[world])), 11)


def test_signal_waits_for_the_async_save_and_resumes_bitwise(
    reference: dict[int, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "usr2"
    spec = write_spec(run_dir, tiny(**RECIPE))
    gate = tmp_path / "gate"
    faults = json.dumps({"pause_after_step": 7, "gate": str(gate)})
    (proc,) = launch(spec, 1, log_dir=tmp_path / "logs", extra_env={FAULTS_ENV: faults})
    poll(lambda: Path(f"{gate}.waiting.0").exists(), "the rank paused after step 7")
    os.kill(proc.pid, signal.SIGUSR2)
    gate.touch()
    assert wait_all([proc]) == [EXIT_REQUEUE], logs(tmp_path / "logs")
    # The save at step 7 ran in the background; the exit waited for its `.complete`.
    assert newest_complete(run_dir / "checkpoints").step == 7
    assert run(spec, 1, tmp_path / "logs") == [0], logs(tmp_path / "logs")
    got = losses(events(run_dir), after_last_start=True)
    ref = losses(events(reference[1]))
    assert sorted(got) == list(range(8, 21))
    assert all(got[s] == ref[s] for s in got), [(s, got[s], ref[s]) for s in got]


@pytest.mark.parametrize("world", [1, 2])
def test_sigkill_during_the_background_write_resumes_from_the_previous(
    reference: dict[int, Path], tmp_path: Path, world: int
) -> None:
    run_dir = tmp_path / "killed"
    spec = write_spec(run_dir, tiny(**RECIPE))
    root = run_dir / "checkpoints"
    faults = json.dumps({"stall_save_step": 10, "stall_at": "mid_write"})
    procs = launch(spec, world, log_dir=tmp_path / "logs", extra_env={FAULTS_ENV: faults})
    poll(lambda: (root / STALLED_FILE).exists(), "the writer stalled in the middle of step 10")
    # Training goes on while step 10 is being written: step 12 is logged meanwhile.
    poll(lambda: max(losses(events(run_dir)), default=0) >= 12, "steps past the save")
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
    wait_all(procs)
    assert (root / f"{CHECKPOINT_TMP_PREFIX}step_00000010").is_dir()  # torn, never loaded
    assert [c.step for c in list_complete(root)] == [5]

    (root / STALLED_FILE).unlink()
    assert run(spec, world, tmp_path / "logs") == [0] * world, logs(tmp_path / "logs")
    evs = events(run_dir)
    started = [e for e in evs if e["event"] == "started"]
    assert [s["start_step"] for s in started] == [0, 5]
    assert_same_losses(losses(evs, after_last_start=True), losses(events(reference[world])), 6)
    assert [c.step for c in list_complete(root)] == [10, 15, 20]
    assert not any(p.name.startswith(CHECKPOINT_TMP_PREFIX) for p in root.iterdir())


# ---------------------------------------------------------------- a full filesystem
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted at tmp_path/run/checkpoints (root and mount(8) needed)."""
    mnt = tmp_path / "run" / "checkpoints"
    mnt.mkdir(parents=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        err = getattr(e, "stderr", b"") or b""
        pytest.skip(f"cannot mount a small tmpfs here ({e} {err.decode().strip()}): needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=60)


def resize(mnt: Path, nbytes: int) -> None:
    kib = -(-nbytes // 4096) * 4  # whole pages
    subprocess.run(
        ["mount", "-o", f"remount,size={kib}k", str(mnt)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def used_bytes(mnt: Path) -> int:
    st = os.statvfs(mnt)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.mark.parametrize(("world", "mode"), [(1, False), (2, True)], ids=["1-sync", "2-async"])
def test_full_disk_during_a_save(small_fs: Path, world: int, mode: bool) -> None:
    run_dir = small_fs.parent
    recipe = {**RECIPE, "checkpoint.async": mode, "checkpoint.keep_last": 3}
    spec = write_spec(run_dir, tiny(**{**recipe, "train.max_steps": 5}))
    log_dir = run_dir.parent / "logs"
    assert run(spec, world, log_dir) == [0] * world, logs(log_dir)
    (first,) = list_complete(small_fs)
    before = {p.name: p.read_bytes() for p in first.path.iterdir()}
    # Room for half another checkpoint: the save of step 10 runs out of space.
    resize(small_fs, used_bytes(small_fs) + first.marker["bytes"] // 2)

    spec = write_spec(run_dir, tiny(**recipe))
    assert run(spec, world, log_dir) == [EXIT_STORAGE] * world, logs(log_dir)
    text = logs(log_dir)
    line = next(ln for ln in text.splitlines() if "no space left" in ln)
    assert f"no space left on {small_fs} (tmpfs) while saving step 10: needs ~" in line, line
    assert " MB free" in line and "Traceback" not in text
    exiting = events(run_dir)[-1]
    assert (exiting["event"], exiting["exit_status"]) == ("exiting", EXIT_STORAGE)
    assert exiting["error"].startswith("no space left on ")
    # The torn save is gone, the previous complete checkpoint is untouched.
    assert sorted(p.name for p in small_fs.iterdir()) == [first.path.name]
    assert {p.name: p.read_bytes() for p in first.path.iterdir()} == before
    assert (first.path / COMPLETE_MARKER).is_file()

    # Space again: the next attempt resumes from step 5 and finishes.
    resize(small_fs, 64 << 20)
    assert run(spec, world, log_dir) == [0] * world, logs(log_dir)
    started = [e for e in events(run_dir) if e["event"] == "started"]
    assert [s["start_step"] for s in started] == [0, 5, 5]
    assert [c.step for c in list_complete(small_fs)][-1] == 20
