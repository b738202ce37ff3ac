"""File reads of places other people can write: THE way olmoctl opens a file it did not
just write itself (every run-directory file, the files beside the state store, the notify
URL file). The counterpart of fileio.py's writes.

A run directory sits on a shared project filesystem, so what is in it is input: a FIFO there
would block `status` forever, a link to /dev/zero would never end. So:
- regular files only: the name is lstat-ed (stat-ed with follow=True, for a path the user
  named) and anything else (FIFO, socket, device, directory, link, link loop) is refused
  before it is opened. One kind of link is read: a bare name in the same folder
  (`X -> Y`, as a job array's wrapper links its rank files to Slurm's raw job ids), one hop,
  to a regular file; it cannot lead out of the folder;
- opened with O_NONBLOCK | O_NOFOLLOW (a name swapped for a FIFO or a link after that look
  neither blocks the open nor is followed), and the descriptor fstat-ed: it must be the same
  regular file (device, inode) the look saw, else refused;
- a bounded read: the last N bytes, or at most N bytes from an offset.
A file that is not there, or not readable, is the caller's OSError as before; a refused one
is `Refused`: one line naming the file and what it is. Standard library only (provenance.py,
which the job shares, reads through it too).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from olmoctl.errors import UsageError, shown_plain
from olmoctl.fileio import kind_of

MiB = 1 << 20
WHOLE_MAX = 32 * MiB  # "the whole file" of a run directory's: at most its last 32 MiB
CHUNK = 4 * MiB  # one read from an offset (a follower comes back for the rest)

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


class Refused(UsageError):
    """Not a regular file (or swapped while being opened): not read."""


def _refused(path: str | os.PathLike[str], st: os.stat_result) -> Refused:
    where = shown_plain(os.fspath(path))
    if stat.S_ISLNK(st.st_mode):
        return Refused(f"{where} is a symbolic link; olmoctl does not follow links here: not read")
    return Refused(f"{where} is a {kind_of(st.st_mode)}, not a regular file: not read")


def _sibling(path: str | os.PathLike[str]) -> tuple[str, os.stat_result] | None:
    """(path, lstat) of the file a same-folder link names (`X -> Y`, Y a bare name), or None
    for any other link (the caller refuses it)."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    if not target or "/" in target or target in (".", "..") or "\0" in target:
        return None
    there = os.path.join(os.path.dirname(os.fspath(path)), target)
    try:
        return there, os.lstat(there)  # a link again is refused: one hop only
    except OSError:
        return None  # dangling: refused as the link it is


@contextlib.contextmanager
def opened(path: str | os.PathLike[str], *, follow: bool = False) -> Iterator[tuple[int, int]]:
    """(descriptor, size) of the regular file at `path`, closed on exit. `follow`: a link
    the user named is followed (its target must still be a regular file)."""
    look = os.stat(path) if follow else os.lstat(path)  # OSError: missing, unreadable
    if stat.S_ISLNK(look.st_mode):
        sibling = _sibling(path)
        if sibling is None or not stat.S_ISREG(sibling[1].st_mode):
            raise _refused(path, look)  # named as the user sees it: the link
        path, look = sibling
    if not stat.S_ISREG(look.st_mode):
        raise _refused(path, look)
    try:
        fd = os.open(path, _FLAGS if follow else _FLAGS | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENXIO):  # a link now; a socket now
            raise
        raise _refused(path, os.lstat(path)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (look.st_dev, look.st_ino):
            raise Refused(f"{shown_plain(os.fspath(path))} changed while being opened: not read")
        yield fd, st.st_size
    finally:
        os.close(fd)


def _read(fd: int, start: int, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        got = os.pread(fd, min(n, CHUNK), start)
        if not got:
            break
        parts.append(got)
        start += len(got)
        n -= len(got)
    return b"".join(parts)


def read_head(path: str | os.PathLike[str], limit: int, *, follow: bool = False) -> bytes:
    """At most `limit` bytes from the start (ask for one more to tell a larger file)."""
    with opened(path, follow=follow) as (fd, _):
        return _read(fd, 0, limit)


def read_tail(path: str | os.PathLike[str], nbytes: int) -> bytes:
    """The last `nbytes` (of the size the file had when opened)."""
    with opened(path) as (fd, size):
        start = max(0, size - nbytes)
        return _read(fd, start, size - start)


def read_from(path: str | os.PathLike[str], offset: int, limit: int = CHUNK) -> bytes:
    """At most `limit` bytes from `offset` (b"" at or past the end)."""
    with opened(path) as (fd, _):
        return _read(fd, max(0, offset), limit)
