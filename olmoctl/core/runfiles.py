"""What launch writes into a run directory before each submission. Where the directory is
(this machine or a remote login node) is the backend's business: `backend.files`
(olmoctl.backends.files)."""

from __future__ import annotations

from typing import Any

from olmoctl.backends.files import RunDirFiles


def run_dir_files(spec: Any, script: str, attempt_no: int) -> RunDirFiles:
    """What launch writes before each submission: the spec and the attempt's script."""
    return {
        "spec.json": (spec.model_dump_json(indent=2), 0o644),
        f"scripts/attempt-{attempt_no}.sh": (script, 0o755),
    }
