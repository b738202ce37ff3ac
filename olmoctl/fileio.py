"""File writes: atomic (a reader sees the old file or the new one, never a torn one), and
only ever into regular files.

The write goes to a temporary file that is then renamed over the target, so whatever is
at the target is replaced. That is right for a regular file and wrong for anything else:
renaming over /dev/null (as root) destroys the device, renaming over a symlink destroys
the link. So a target that exists must be a regular file (a hard-linked one is fine: the
rename replaces this name only, the other names keep the old content): devices, FIFOs,
sockets and directories are refused, and so is a symlink (refused rather than written
through: a link in a shared directory such as /tmp may point at a file the user never
meant to touch).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from olmoctl.errors import UsageError, shown_plain

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISREG, "regular file"),
)


def kind_of(mode: int) -> str:
    """What a stat mode is, in words ("character device", "symbolic link"...)."""
    return next((word for test, word in _KINDS if test(mode)), "special file")


def check_target(path: str | os.PathLike[str], label: str | None = None) -> None:
    """Refuse (UsageError, one line) a target that exists and is not a regular file, or
    whose folder does not exist. `label` names the option it came from (e.g. --out)."""
    path = Path(path)
    where = f"{label} {path}" if label else str(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = path.parent
        if not parent.is_dir():
            raise UsageError(f"{where}: cannot write: folder {parent} does not exist") from None
        return
    except OSError as e:
        raise UsageError(f"{where}: cannot write: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(
            f"{where}: cannot write: it is a symbolic link, and olmoctl never replaces or "
            f"writes through a link: give the path it points to ({os.readlink(path)})"
        )
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(
            f"{where}: cannot write: it is a {kind_of(st.st_mode)}; olmoctl writes regular "
            "files only" + (" (leave out --out to print to stdout)" if label == "--out" else "")
        )


def atomic_write(
    path: str | os.PathLike[str],
    text: str | bytes,
    mode: int = 0o644,
    *,
    label: str | None = None,
) -> None:
    """Write PATH whole or not at all; refuses a target that is not a regular file."""
    path = Path(path)
    check_target(path, label)
    data = text.encode() if isinstance(text, str) else text
    import tempfile  # here: startup is sacred, and only writers need it

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_folder(path: str | os.PathLike[str], label: str) -> list[Path]:
    """Refuse (UsageError, one line) a folder that olmoctl could not make or write into
    (--out of card and export, before anything is written): whatever exists of the path
    must be folders, and the deepest of them must take a new entry (tried: one is made and
    removed, since access() says yes to root in /proc and /sys). Returns the folders that
    are missing, outermost first, for the caller to make (and take away on failure)."""
    path = Path(path)
    missing: list[Path] = []
    there = path
    try:
        while not os.path.lexists(there) and there != there.parent:
            missing.insert(0, there)
            there = there.parent
        st = os.stat(there)
    except OSError as e:
        raise UsageError(f"{label} {shown_plain(path)}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(
            f"{label} {shown_plain(path)}: {shown_plain(there)} is a {kind_of(st.st_mode)}, "
            "not a folder"
        )
    try:
        name_max = os.pathconf(there, "PC_NAME_MAX")
        path_max = os.pathconf(there, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    long = next((m.name for m in missing if len(os.fsencode(m.name)) > name_max), None)
    if long is not None or len(os.fsencode(os.path.abspath(path))) >= path_max:
        what = f"the name {shown_plain(long)} is" if long else "the path is"
        raise UsageError(
            f"{label} {shown_plain(path)}: {what} too long (at most {name_max} bytes a "
            f"name, {path_max - 1} a path)"
        )
    import tempfile  # here: startup is sacred

    try:
        os.rmdir(tempfile.mkdtemp(dir=there, prefix=".olmoctl-probe-"))
    except OSError as e:
        raise UsageError(
            f"{label} {shown_plain(path)}: cannot create anything in {shown_plain(there)} "
            f"({e.strerror})"
        ) from None
    return missing
