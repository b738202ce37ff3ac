"""What launch writes into a run directory before each submission. Where the directory is
(this machine or a remote login node) is the backend's business: `backend.files`
(olmoctl.backends.files)."""

from __future__ import annotations

from typing import Any

from olmoctl.backends.files import RunDirFiles
from olmoctl.schemas import contract as rd


def run_dir_files(spec: Any, script: str, attempt_no: int) -> RunDirFiles:
    """What launch writes before each submission: the spec and the attempt's script."""
    return {
        rd.SPEC_FILE: (spec.model_dump_json(indent=2), 0o644),
        rd.script_file(attempt_no): (script, 0o755),
    }
