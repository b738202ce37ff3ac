"""Checkpoint policy in-process: retention (last K + permanent), recognising a full
filesystem in what a save raised, and the one line that says so."""

from __future__ import annotations

import errno
import json
import traceback
from pathlib import Path

import pytest
from torch.distributed.checkpoint.api import CheckpointException

from olmoctl.schemas.contract import COMPLETE_MARKER, step_dir_name
from olmoctl.train.checkpoint import dcp as ckpt
from olmoctl.train.checkpoint import storage
from olmoctl.train.checkpoint.retention import to_remove


@pytest.mark.parametrize(
    ("steps", "keep", "every", "gone"),
    [
        ([5, 10, 15, 20, 25], 2, 0, [5, 10, 15]),
        ([5, 10, 15, 20, 25], 1, 10, [5, 15]),  # 10, 20 permanent; 25 the last ephemeral
        ([10, 20], 1, 10, []),  # only permanent ones: nothing to delete
        ([3, 1, 2], 5, 0, []),
    ],
)
def test_retention_keeps_the_last_ephemeral_and_every_permanent(
    steps: list[int], keep: int, every: int, gone: list[int]
) -> None:
    assert to_remove(steps, keep, every) == gone


def test_apply_retention_removes_only_complete_ephemeral_ones(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for step in (5, 10, 15, 20):
        d = root / step_dir_name(step)
        d.mkdir(parents=True)
        (d / ".metadata").write_bytes(b"x")
        (d / COMPLETE_MARKER).write_text(json.dumps({"step": step}))
    (root / ".tmp-step_00000025").mkdir()  # the save in flight is not retention's business
    assert ckpt.apply_retention(root, keep_last=1, permanent_every=10) == [5]
    assert sorted(p.name for p in root.iterdir()) == [
        ".tmp-step_00000025", "step_00000010", "step_00000015", "step_00000020",
    ]  # fmt: skip


def _checkpoint_exception(inner: BaseException) -> CheckpointException:
    return CheckpointException("write", {1: (inner, traceback.extract_stack())})


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"),
        _checkpoint_exception(OSError(errno.ENOSPC, "No space left on device")),
    ],
    ids=["enospc", "edquot", "torch-short-write", "dcp-wrapped"],
)
def test_no_space_is_recognised(exc: BaseException, tmp_path: Path) -> None:
    assert storage.is_no_space(exc, tmp_path)


def test_other_errors_are_not_no_space(tmp_path: Path) -> None:
    assert not storage.is_no_space(PermissionError(errno.EACCES, "denied"), tmp_path)
    assert not storage.is_no_space(_checkpoint_exception(KeyError("x")), tmp_path)
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = OSError(errno.ENOSPC, "full")
    assert storage.is_no_space(wrapped)


def test_the_line_names_filesystem_step_need_and_free(tmp_path: Path) -> None:
    line = storage.no_space_line(tmp_path / "checkpoints", 20, 14_200_000_000)
    mnt, fstype = storage.mount_of(tmp_path)
    assert line.startswith(f"no space left on {mnt} ({fstype}) while saving step 20: ")
    assert "needs ~14.2 GB, " in line and " free (checkpoints in " in line
    assert "\n" not in line
    assert storage.human_bytes(1_500_000) == "1.5 MB"
