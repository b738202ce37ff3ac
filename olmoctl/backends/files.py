"""A run directory's files: the `RunFiles` interface core reads them through (every
backend's `files`), and `LocalFiles`, this machine's filesystem. The local and Slurm backends
keep their run directories here; the remote olmoctl on a login node answers an SSH backend's
file requests with it. The SSH backend carries its own implementation (backends/ssh.py)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Protocol

from olmoctl.errors import UsageError
from olmoctl.fileio import atomic_write
from olmoctl.schemas import contract as rd

# path relative to the run directory -> (text, file mode)
RunDirFiles = dict[str, tuple[str, int]]


def holds_run(run_dir: str | Path) -> bool:
    """A run directory on this machine that a run already wrote its spec.json into."""
    return Path(run_dir, rd.SPEC_FILE).exists()


def dir_taken(run_dir: str) -> UsageError:
    """The one "run directory already holds a run" error (core/launch/names.py, LocalFiles)."""
    return UsageError(f"run directory {run_dir} already holds a run; pick another --name")


class RunFiles(Protocol):
    remote: bool

    def write_run_dir(self, run_dir: str, files: RunDirFiles, *, new_run: bool) -> bool:
        """Create logs/ and scripts/, write `files` atomically; True if the directory is new
        (and so to be removed if the submission fails). new_run: refuse a directory that
        already holds a run (spec.json). A remote implementation may hold the files back and
        write them with the submission that follows (then it undoes them itself: False)."""

    def remove_run_dir(self, run_dir: str) -> None: ...

    def read_tail(self, path: str, nbytes: int | None) -> bytes:
        """The last `nbytes` of the file (all of it for None); b"" if it cannot be read."""

    def read_from(self, path: str, offset: int) -> bytes:
        """Bytes from `offset` to the end; b"" if the file cannot be read."""

    def read_many(self, items: list[tuple[str, int]]) -> list[bytes]:
        """read_from for each (path, offset), in one go."""

    def glob(self, folder: str, pattern: str) -> list[str]:
        """Paths in `folder` matching `pattern`, sorted."""

    def exists(self, path: str) -> bool: ...

    def checkpoints(self, run_dir: str) -> list[tuple[int, str, bool]]:
        """(step, path, complete) for every checkpoints/step_N folder, oldest first."""

    def free_bytes(self, path: str) -> int | None:
        """Bytes free to this user on the filesystem that holds `path` (its nearest existing
        ancestor); None if that cannot be asked (olmoctl.diskspace.free_bytes)."""


class LocalFiles:
    remote = False

    def write_run_dir(self, run_dir: str, files: RunDirFiles, *, new_run: bool) -> bool:
        root = Path(run_dir)
        if new_run and holds_run(root):
            raise dir_taken(run_dir)
        created = not root.exists()
        try:
            (root / rd.LOGS_DIR).mkdir(parents=True, exist_ok=True)
            (root / rd.SCRIPTS_DIR).mkdir(exist_ok=True)
            for rel, (text, mode) in files.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                atomic_write(root / rel, text, mode=mode)
        except BaseException:
            if created:
                shutil.rmtree(root, ignore_errors=True)
            raise
        return created

    def remove_run_dir(self, run_dir: str) -> None:
        shutil.rmtree(run_dir, ignore_errors=True)

    def read_tail(self, path: str, nbytes: int | None) -> bytes:
        try:
            with open(path, "rb") as f:
                if nbytes is not None:
                    f.seek(0, 2)
                    f.seek(max(0, f.tell() - nbytes))
                return f.read()
        except OSError:
            return b""

    def read_from(self, path: str, offset: int) -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    def read_many(self, items: list[tuple[str, int]]) -> list[bytes]:
        return [self.read_from(p, off) for p, off in items]

    def glob(self, folder: str, pattern: str) -> list[str]:
        root = Path(folder)
        if not root.is_dir():
            return []
        return sorted(str(p) for p in root.glob(pattern))

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def checkpoints(self, run_dir: str) -> list[tuple[int, str, bool]]:
        out: list[tuple[int, str, bool]] = []
        with contextlib.suppress(OSError):
            for p in sorted(rd.checkpoints_root(run_dir).iterdir()):
                step = rd.parse_step_dir(p.name)
                if step is not None and p.is_dir():
                    out.append((step, str(p), (p / rd.COMPLETE_MARKER).exists()))
        return out

    def free_bytes(self, path: str) -> int | None:
        from olmoctl.diskspace import free_bytes

        return free_bytes(path)


LOCAL = LocalFiles()
