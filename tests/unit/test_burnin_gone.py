"""The burn-in's rank 0 learns from srun's own lines which tasks ended (a node without its
filesystem or its Python), instead of waiting the start timeout for them."""

from __future__ import annotations

from pathlib import Path

from olmoctl.train.burnin.gone import GoneTasks


def _log(tmp_path: Path, earlier: str, now: str) -> GoneTasks:
    log = tmp_path / "slurm-7.out"
    log.write_text(earlier)
    env = {"OLMOCTL_BATCH_LOG": str(log), "OLMOCTL_BATCH_LOG_FROM": str(len(earlier.encode()))}
    with open(log, "a") as f:
        f.write(now)
    return GoneTasks.from_env(env)


def test_tasks_srun_saw_end_since_the_step_began(tmp_path: Path) -> None:
    gone = _log(
        tmp_path,
        "srun: error: node9: task 5: Exited with exit code 1\n",  # an earlier step's
        "slurmstepd: error: execve(): python: No such file or directory\n"
        "srun: error: node3: tasks 2-3: Exited with exit code 2\n"
        "srun: error: node4: task 4: Killed\n",
    )
    assert gone.cover({2, 3, 4})
    assert not gone.cover({1, 2})  # rank 1 is merely late: keep waiting for it
    assert gone.by_node() == {
        "node3": "node3: tasks 2-3: Exited with exit code 2",
        "node4": "node4: task 4: Killed",
    }
    assert 5 not in gone.ranks


def test_hostile_or_odd_lines_count_for_nothing(tmp_path: Path) -> None:
    gone = _log(
        tmp_path,
        "",
        "srun: error: $(pwn): task 1: Exited with exit code 1\n"
        "srun: error: node2: task \u0661: Exited with exit code 1\n"  # Arabic-Indic 1
        "srun: error: node2: tasks 9-3: Exited with exit code 1\n"
        "srun: error: node2: tasks 0-99999999: Exited with exit code 1\n",
    )
    assert not gone.cover({1}) and gone.ranks == {}


def test_without_a_log_nothing_is_known(tmp_path: Path) -> None:
    assert not GoneTasks.from_env({}).cover({1})
    fifo = tmp_path / "fifo"
    import os

    os.mkfifo(fifo)  # never opened for reading: refused, not a hang
    assert not GoneTasks.from_env({"OLMOCTL_BATCH_LOG": str(fifo)}).cover({1})
