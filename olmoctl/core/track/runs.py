"""A run by name: its store row (a one-line error naming close matches when there is none)
and its recorded spec, validated again (a damaged row is DamagedRow, one line)."""

from __future__ import annotations

from olmoctl.errors import UsageError, shown
from olmoctl.schemas import RunSpec
from olmoctl.schemas.errors import one_line, suggest
from olmoctl.store import DamagedRow, Run, Store


def find_run(store: Store, name: str) -> Run:
    row = store.get_run(name)
    if row is None:
        names = store.run_names()
        hint = suggest(name, names) if names else "; no runs recorded yet"
        raise UsageError(f"no run named {shown(name)}{hint}")
    if row.damage:
        raise DamagedRow(name, row.damage)
    return row


def spec_of(run: Run) -> RunSpec:
    """The run's recorded spec; DamagedRow (one line) if it no longer validates."""
    from pydantic import ValidationError

    try:
        return RunSpec.model_validate(run.spec_data)
    except ValidationError as e:
        raise DamagedRow(run.name, f"spec_json: {one_line(e, RunSpec)}") from None
