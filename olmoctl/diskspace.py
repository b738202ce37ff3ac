"""Free space on the filesystem that will hold a run's checkpoints, and the one warning when
it is short. Standard library only, so that every side can use it: `launch` (core, before
submitting; core/launch/checks.py), the login node's `olmoctl _remote serve` (the
`free_space` op, for a remote cluster) and the job (olmoctl.train may import it)."""

from __future__ import annotations

import os
from pathlib import Path

GB = 1e9


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged user may still write on the filesystem that holds `path` (or
    would: the nearest existing ancestor answers for a run directory not made yet); None if
    the filesystem cannot be asked."""
    p = Path(path)
    for candidate in (p, *p.parents):
        try:
            st = os.statvfs(candidate)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return None
        # A filesystem of no blocks (/proc, /sys) holds no files: nothing to say about
        # space (making the run directory there fails, in one line, on its own).
        return st.f_bavail * st.f_frsize if st.f_blocks else None
    return None


def low_space_warning(path: str, free: int, need: int, what: str) -> str | None:
    """One line when `free` bytes on `path`'s filesystem are fewer than `need` (what they
    are for: e.g. "4 checkpoints of 787.0 GB"); None when there is room."""
    if free >= need:
        return None
    return (
        f"{free / GB:,.1f} GB free on the filesystem holding {path}, less than {what} "
        f"({need / GB:,.1f} GB): free space, lower checkpoint.keep_last, or choose another "
        "cluster.runs_root; saves will fail when it fills"
    )


def space_warning(path: str, need: int, what: str) -> str | None:
    """low_space_warning for `path` on this machine; None when there is room or the
    filesystem cannot be asked."""
    free = free_bytes(path)
    return None if free is None else low_space_warning(path, free, need, what)
