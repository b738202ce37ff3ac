"""Access to a run directory: here (plain file I/O) or on a remote cluster (the SSH backend).

Core code never opens a run's files itself; it asks `files_of(backend)` for the few things
it needs: write the run directory, the tail of a file, new bytes from an offset, a glob,
the checkpoints. The interface and this machine's implementation (`LocalFiles`) are in
backends/files.py; a backend whose run directories live elsewhere carries its own as its
`files` attribute (backends/ssh.py).
"""

from __future__ import annotations

from typing import Any

from olmoctl.backends.files import LOCAL, LocalFiles, RunDirFiles, RunFiles
from olmoctl.schemas import contract as rd

__all__ = ["LOCAL", "LocalFiles", "RunDirFiles", "RunFiles", "files_of", "run_dir_files"]


def files_of(backend: Any) -> RunFiles:
    """Where `backend`'s run directories live: its own `files` (remote), else this machine."""
    return getattr(backend, "files", None) or LOCAL


def run_dir_files(spec: Any, script: str, attempt_no: int) -> RunDirFiles:
    """What launch writes before each submission: the spec and the attempt's script."""
    return {
        rd.SPEC_FILE: (spec.model_dump_json(indent=2), 0o644),
        rd.script_file(attempt_no): (script, 0o755),
    }
