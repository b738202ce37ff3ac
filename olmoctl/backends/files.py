"""A run directory's files: the `RunFiles` interface core reads them through (every
backend's `files`), and `LocalFiles`, this machine's filesystem. The local and Slurm backends
keep their run directories here; the remote olmoctl on a login node answers an SSH backend's
file requests with it. The SSH backend carries its own implementation (backends/ssh.py).

A run directory is on a shared filesystem, so what it holds is input (olmoctl.fileread):
every read is bounded and of regular files only (a refused one raises fileread.Refused). A
new run's directory is made fresh (never an existing folder, never through a link) and no
one else may write it: whatever the umask, olmoctl's folders are 0755 (`owner_writes`
for what submitit and the job create), and one others can write is reported (`untrusted`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from olmoctl import fileread
from olmoctl.errors import UsageError, shown_plain
from olmoctl.fileio import atomic_write, kind_of
from olmoctl.fileread import Refused
from olmoctl.schemas import contract as rd

# path relative to the run directory -> (text, file mode)
RunDirFiles = dict[str, tuple[str, int]]
DIR_MODE = 0o755  # olmoctl's folders in a run directory: no one else writes them
_SCAN_MAX = 4096  # entries of a run directory looked at by untrusted()


def holds_run(run_dir: str | Path) -> bool:
    """A run directory on this machine that a run already wrote its spec.json into."""
    return Path(run_dir, rd.SPEC_FILE).exists()


def dir_taken(run_dir: str) -> UsageError:
    """The one "run directory already holds a run" error (core/launch/names.py, LocalFiles)."""
    return UsageError(f"run directory {run_dir} already holds a run; pick another --name")


def new_dir_problem(run_dir: str | Path) -> UsageError | None:
    """Why a new run cannot have this directory (None: nothing is there): anything already
    at the path, a run's, a foreign folder, a link or a file, is refused, never adopted (a
    link to /etc once made a local run write its whole tree there)."""
    where = shown_plain(str(run_dir))
    try:
        st = os.lstat(run_dir)
    except FileNotFoundError:
        return None
    except OSError as e:
        return UsageError(f"run directory {where}: cannot look at it: {e.strerror}")
    if stat.S_ISLNK(st.st_mode):
        return UsageError(
            f"run directory {where} is a symbolic link; olmoctl makes a new run's directory "
            "itself and never writes through a link: pick another --name or remove the link"
        )
    if not stat.S_ISDIR(st.st_mode):
        return UsageError(f"run directory {where} is a {kind_of(st.st_mode)}; pick another --name")
    if holds_run(run_dir):
        return dir_taken(str(run_dir))
    return UsageError(
        f"run directory {where} already exists and is not an olmoctl run (no spec.json); "
        "olmoctl makes a new run's directory fresh: pick another --name or move it away"
    )


def untrusted(run_dir: str | Path) -> str | None:
    """Why someone other than this user could change what the run directory holds, in one
    line (None: only this user can, or it does not exist): the directory or a folder in it
    (scripts/, submitit/, checkpoints/...: run or loaded by the job) is a link, another
    user's, or writable by its group or others."""
    root = Path(run_dir)
    try:
        st = os.lstat(root)
    except OSError:
        return None
    problem = _not_private(f"run directory {shown_plain(str(root))}", st)
    if problem is not None or not stat.S_ISDIR(st.st_mode):
        return problem
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for i, entry in enumerate(entries):
            if i >= _SCAN_MAX:
                break
            sub = entry.stat(follow_symlinks=False)
            what = f"its folder {shown_plain(entry.path)}"
            if stat.S_ISDIR(sub.st_mode) and (problem := _not_private(what, sub)):
                return problem
    return None


def _not_private(what: str, st: os.stat_result) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return f"{what} is a symbolic link"
    if st.st_uid != os.geteuid():
        return f"{what} belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return (
            f"{what} is writable by its group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}): chmod go-w it once you trust what it holds"
        )
    return None


@contextlib.contextmanager
def owner_writes() -> Iterator[None]:
    """Files and folders made meanwhile (submitit's folder and pickles, the record's code/)
    are not group/other-writable whatever the umask (project folders often have 002), and
    neither is what the job makes: sbatch and submitit's local job take this umask along."""
    old = os.umask(0o022)
    os.umask(old | 0o022)
    try:
        yield
    finally:
        os.umask(old)


def _own_dir(path: Path) -> None:
    """`path` as a real folder of this user's (made 0755 if missing; a link is refused)."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            what = "symbolic link" if stat.S_ISLNK(st.st_mode) else kind_of(st.st_mode)
            raise UsageError(
                f"{shown_plain(str(path))} is a {what}, not a folder: not written through"
            ) from None
        return
    keep = os.lstat(path).st_mode & stat.S_ISGID  # a project folder's setgid group stays
    os.chmod(path, DIR_MODE | keep)


def make_run_dir(run_dir: str | Path) -> None:
    """A new run's directory, made here (mkdir of the last component: never an existing
    folder or a link, refused in one line), 0755; the runs root above it as needed."""
    root = Path(run_dir)
    problem = new_dir_problem(root)
    if problem is not None:
        raise problem
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(root, DIR_MODE)
    except FileExistsError:  # made by someone else since the look above
        raise new_dir_problem(root) or dir_taken(str(root)) from None
    keep = os.lstat(root).st_mode & stat.S_ISGID
    os.chmod(root, DIR_MODE | keep)


class RunFiles(Protocol):
    remote: bool

    def write_run_dir(self, run_dir: str, files: RunDirFiles, *, new_run: bool) -> bool:
        """Create logs/ and scripts/, write `files` atomically; True if the directory is new
        (and so to be removed if the submission fails). new_run: the directory is made fresh
        (anything already there is refused: new_dir_problem); else one others can write is
        refused (untrusted). A remote implementation may hold the files back and write them
        with the submission that follows (then it undoes them itself: False)."""

    def remove_run_dir(self, run_dir: str) -> None: ...

    def read_tail(self, path: str, nbytes: int | None) -> bytes:
        """The last `nbytes` of the file (None: all of it, up to fileread.WHOLE_MAX); b"" if
        it is missing or unreadable; fileread.Refused if it is not a regular file."""

    def read_from(self, path: str, offset: int) -> bytes:
        """At most fileread.CHUNK bytes from `offset`; b"" if the file cannot be read;
        Refused if it is not a regular file."""

    def read_many(self, items: list[tuple[str, int]]) -> list[bytes | Refused]:
        """read_from for each (path, offset), in one go; a refused file's item is its
        Refused (returned, not raised: the others are read)."""

    def glob(self, folder: str, pattern: str) -> list[str]:
        """Paths in `folder` matching `pattern`, sorted (none in a folder that is a link)."""

    def exists(self, path: str) -> bool: ...

    def checkpoints(self, run_dir: str) -> list[tuple[int, str, bool]]:
        """(step, path, complete) for every checkpoints/step_N folder, oldest first (real
        folders only; complete: its marker is a regular file)."""

    def free_bytes(self, path: str) -> int | None:
        """Bytes free to this user on the filesystem that holds `path` (its nearest existing
        ancestor); None if that cannot be asked (olmoctl.diskspace.free_bytes)."""

    def untrusted(self, run_dir: str) -> str | None:
        """Why others could change what the run directory holds (files.untrusted), or None."""


class LocalFiles:
    remote = False

    def write_run_dir(self, run_dir: str, files: RunDirFiles, *, new_run: bool) -> bool:
        root = Path(run_dir)
        created = new_run or not os.path.lexists(root)
        if created:
            make_run_dir(root)
        elif (why := untrusted(root)) is not None:
            raise UsageError(f"{why}; not writing into it")
        try:
            for sub in (rd.LOGS_DIR, rd.SCRIPTS_DIR):
                _own_dir(root / sub)
            for rel, (text, mode) in files.items():
                folder = root
                for part in Path(rel).parent.parts:
                    folder = folder / part
                    _own_dir(folder)
                atomic_write(root / rel, text, mode=mode)
        except BaseException:
            if created:
                shutil.rmtree(root, ignore_errors=True)
            raise
        return created

    def remove_run_dir(self, run_dir: str) -> None:
        shutil.rmtree(run_dir, ignore_errors=True)

    def read_tail(self, path: str, nbytes: int | None) -> bytes:
        limit = fileread.WHOLE_MAX if nbytes is None else min(nbytes, fileread.WHOLE_MAX)
        try:
            return fileread.read_tail(path, limit)
        except OSError:
            return b""

    def read_from(self, path: str, offset: int) -> bytes:
        try:
            return fileread.read_from(path, offset)
        except OSError:
            return b""

    def read_many(self, items: list[tuple[str, int]]) -> list[bytes | Refused]:
        out: list[bytes | Refused] = []
        for p, off in items:
            try:
                out.append(self.read_from(p, off))
            except Refused as e:
                out.append(e)
        return out

    def glob(self, folder: str, pattern: str) -> list[str]:
        root = Path(folder)
        try:
            if not stat.S_ISDIR(os.lstat(root).st_mode):
                return []  # missing, or a link: not listed
        except OSError:
            return []
        return sorted(str(p) for p in root.glob(pattern))

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def checkpoints(self, run_dir: str) -> list[tuple[int, str, bool]]:
        out: list[tuple[int, str, bool]] = []
        root = rd.checkpoints_root(run_dir)
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(root).st_mode):
                for p in sorted(root.iterdir()):
                    step = rd.parse_step_dir(p.name)
                    if step is not None and _is(p, stat.S_ISDIR):
                        out.append((step, str(p), _is(p / rd.COMPLETE_MARKER, stat.S_ISREG)))
        return out

    def free_bytes(self, path: str) -> int | None:
        from olmoctl.diskspace import free_bytes

        return free_bytes(path)

    def untrusted(self, run_dir: str) -> str | None:
        return untrusted(run_dir)


def _is(path: Path, kind: Callable[[int], bool]) -> bool:
    """Whether `path` itself (a link is not followed) is of `kind` (stat.S_ISDIR...)."""
    try:
        return kind(os.lstat(path).st_mode)
    except OSError:
        return False


LOCAL = LocalFiles()
