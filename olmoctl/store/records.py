"""Reproducibility records: RUN_DIR/record.json's copy in the store, with indexed columns."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from typing import Any

from olmoctl.store.base import Queries


@dataclass(frozen=True)
class RecordIndex:
    """The columns a record is found by (git commit, data...), next to the record itself."""

    run_name: str
    from_run: str | None
    olmoctl_version: str | None
    git_commit: str | None
    git_dirty: int | None
    source_sha256: str | None
    seed: int | None
    data_sha256: str | None
    indices_sha256: str | None


class RecordReads(Queries):
    def stored_record(self, run_name: str) -> dict[str, Any] | None:
        row = (
            self._db()
            .execute("SELECT record_json FROM run_records WHERE run_name = ?", (run_name,))
            .fetchone()
        )
        if row is None:
            return None
        # A damaged column (not text, not JSON, not an object) is no stored record.
        raw = row["record_json"]
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None


class RecordWrites(Queries):
    def save_record(self, index: RecordIndex, record: dict[str, Any], updated_at: float) -> None:
        self._db().execute(
            "INSERT INTO run_records (run_name, from_run, olmoctl_version, git_commit, "
            "git_dirty, source_sha256, seed, data_sha256, indices_sha256, record_json, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_name) DO UPDATE SET "
            "from_run=excluded.from_run, olmoctl_version=excluded.olmoctl_version, "
            "git_commit=excluded.git_commit, git_dirty=excluded.git_dirty, "
            "source_sha256=excluded.source_sha256, seed=excluded.seed, "
            "data_sha256=excluded.data_sha256, indices_sha256=excluded.indices_sha256, "
            "record_json=excluded.record_json, updated_at=excluded.updated_at",
            (*astuple(index), json.dumps(record), updated_at),
        )
