"""A checkpoint that does not fit: recognise "no space left" / "quota exceeded" in whatever
a save raised (DCP wraps the OSError of each rank, torch.serialization turns a short write
into `unexpected pos N vs M`) and say it in one line that names the filesystem, the step,
the size needed and the space free."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from olmoctl.diskspace import free_bytes

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# What a short write looks like after the OSError has been turned into text.
NO_SPACE_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|unexpected pos \d+ vs \d+", re.IGNORECASE
)
# Below this much free space an unrecognised write error is taken for a full filesystem.
NEARLY_FULL_BYTES = 1 << 20


class StorageFull(Exception):
    """The checkpoint filesystem ran out of space (or quota) during a save. The message is
    the one line for the user; the torn checkpoint is already removed."""


class SaveFailed(Exception):
    """A save failed for another reason (the first line of the cause is in the message)."""


def _causes(exc: BaseException) -> list[BaseException]:
    """exc, its causes/contexts, and the per-rank failures a DCP CheckpointException holds."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop()
        if e in seen:
            continue
        seen.append(e)
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
        failures = getattr(e, "failures", None)  # CheckpointException: {rank: exc or (exc, tb)}
        if isinstance(failures, dict):
            for f in failures.values():
                f = f[0] if isinstance(f, tuple) and f else f
                if isinstance(f, BaseException):
                    todo.append(f)
    return seen


def is_no_space(exc: BaseException, path: Path | None = None) -> bool:
    for e in _causes(exc):
        if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS:
            return True
        if NO_SPACE_TEXT.search(str(e)):
            return True
    free = free_bytes(path) if path is not None else None
    return free is not None and free < NEARLY_FULL_BYTES


def mount_of(path: Path) -> tuple[str, str]:
    """(mount point, filesystem type) holding path, from /proc/self/mounts when readable."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    best, fstype = "/", "?"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        lines = []
    real = os.path.realpath(p)
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = parts[1].replace("\\040", " ")
        inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
        if inside and len(mnt) >= len(best):
            best, fstype = mnt, parts[2]
    return best, fstype


def human_bytes(n: float) -> str:
    """GB above 1 GB, else MB (a test filesystem of a few MB still reads sensibly)."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB"


def no_space_line(path: Path, step: int, needed_bytes: int) -> str:
    mnt, fstype = mount_of(path)
    where = "" if os.path.realpath(path) == mnt else f"checkpoints in {path}; "
    return (
        f"no space left on {mnt} ({fstype}) while saving step {step}: needs "
        f"~{human_bytes(needed_bytes)}, {human_bytes(free_bytes(path) or 0)} free "
        f"({where}the previous complete checkpoint is kept)"
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
