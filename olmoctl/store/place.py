"""Where the store lives: the state directory and the database file, checked before use.

A store in a directory others can write could be replaced under us (and its rows reach
batch scripts), so such a directory is refused, never chmod-ed: it may be a shared one
that other people rely on. A directory olmoctl creates is 0700; the database and its
-wal/-shm files are olmoctl's own and are kept 0600. A symlinked state directory is fine
(the checks apply to its target); a symlinked database is refused, since sqlite would
follow it to whatever file it names.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from olmoctl.fileio import kind_of
from olmoctl.store.errors import MOVE_ASIDE, StoreError

SIDE_FILES = ("-wal", "-shm", "-journal")
_ELSEWHERE = "set OLMOCTL_STATE_DIR (or --state-dir) to a private directory"


def check_dir(d: Path) -> bool:
    """True if the state directory exists and is safe to use, False if it does not exist;
    StoreError if it is not a directory, is writable by others, or belongs to another user."""
    try:
        st = os.stat(d)
    except FileNotFoundError:
        if os.path.islink(d):
            raise StoreError(
                f"state directory {d} is a symbolic link to a missing directory "
                f"({os.readlink(d)}): create its target or remove the link"
            ) from None
        return False
    except OSError as e:
        raise StoreError(
            f"state directory {d} is not usable ({e.strerror}): {_ELSEWHERE}"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"state directory {d} is a {kind_of(st.st_mode)}: {_ELSEWHERE}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        who = "everyone" if mode & 0o002 else "its group"
        raise StoreError(
            f"state directory {d} is writable by {who} (mode {mode:04o}), so others could "
            f"replace the store: run `chmod go-w {d}` if it is yours alone, or {_ELSEWHERE}"
        )
    if st.st_uid not in (os.geteuid(), 0):
        raise StoreError(
            f"state directory {d} belongs to another user (uid {st.st_uid}): {_ELSEWHERE}"
        )
    return True


def create_dir(d: Path) -> list[Path]:
    """Create the state directory 0700; returns the directories made, deepest first (so a
    first launch that fails can take them away again)."""
    made: list[Path] = []
    p = d
    while not os.path.lexists(p) and p != p.parent:
        made.append(p)
        p = p.parent
    try:
        d.mkdir(parents=True, mode=0o700)
        os.chmod(d, 0o700)  # ours: exactly 0700 whatever the umask
    except FileExistsError:
        made = []  # another olmoctl made it first: not ours to remove
    except OSError as e:
        raise StoreError(
            f"state directory {d} is not writable: cannot create it ({e.strerror}): {_ELSEWHERE}"
        ) from None
    check_dir(d)
    return made


def check_db(path: Path) -> os.stat_result | None:
    """The database file's stat, or None if there is none. Refuses a link or anything
    but a regular file. Changes nothing: the file may be another program's (tighten()
    runs once the schema says it is olmoctl's)."""
    for p in (path, *(Path(f"{path}{s}") for s in SIDE_FILES)):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            if p == path:
                return None
            continue
        if stat.S_ISLNK(st.st_mode):
            raise StoreError(
                f"state store {p} is a symbolic link; olmoctl opens only a regular file "
                f"there (sqlite would write wherever it points): put the real file at {p}"
            )
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(
                f"state store {p} is a {kind_of(st.st_mode)}, not a database file: {MOVE_ASIDE}"
            )
    return os.lstat(path)


def tighten(path: Path) -> None:
    """The database and its side files 0600 when they are ours: olmoctl's own files, left
    readable by an older version. Only after the schema check (never another program's)."""
    for p in (path, *(Path(f"{path}{s}") for s in SIDE_FILES)):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if (
            stat.S_ISREG(st.st_mode)
            and st.st_uid == os.geteuid()
            and stat.S_IMODE(st.st_mode) & 0o077
        ):
            os.chmod(p, 0o600)


def create_db(path: Path) -> bool:
    """Create the database file 0600 (never through a link); False if it already existed."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    except OSError as e:
        raise StoreError(
            f"state store {path} cannot be created ({e.strerror}): {_ELSEWHERE}"
        ) from None
    os.close(fd)
    return True
