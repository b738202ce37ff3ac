"""Re-running and comparing: `launch --from RUN`, `render --diff RUN`, `render --diff-cluster`.

A run is re-created from its recorded config (the RunSpec in the store), never from the
recipe and profile files as they are now: those may have changed since.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olmoctl.backends.base import Backend
from olmoctl.core.launch import catalog
from olmoctl.core.launch import checks as launch_checks
from olmoctl.core.launch.render import render
from olmoctl.core.launch.specs import SpecConfig, for_new_run, resolve
from olmoctl.core.launch.submit import Launched, submit_attempt
from olmoctl.core.records import record
from olmoctl.core.track.runs import find_run, spec_of
from olmoctl.errors import UsageError, shown
from olmoctl.schemas import RunSpec
from olmoctl.schemas import contract as rd
from olmoctl.schemas.bounded import RUN_FILE, read_text
from olmoctl.schemas.record import Record
from olmoctl.store import Store


@dataclass
class FromPlan:
    source: str
    spec: RunSpec
    overrides: list[str]
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_from(
    store: Store,
    source: str,
    *,
    name: str | None,
    overrides: list[str],
    time: str | None = None,
    force: bool = False,
) -> FromPlan:
    """The new run `launch --from SOURCE` would submit, and every difference in code,
    package versions and data between SOURCE's record and now."""
    row = find_run(store, source)
    src = spec_of(row)
    config = SpecConfig.from_spec(src, name=name, overrides=overrides, time=time)
    spec = for_new_run(store, config)
    launch_checks.check(spec, force=force)  # memory and time limit, as for any new run
    rec = record.refresh(store, row)  # after every refusal: a refused --from changes nothing
    diffs, notes = record.differences(Record.of(rec), spec)
    return FromPlan(source, spec, list(overrides), diffs, notes)


def launch_from(
    store: Store,
    plan: FromPlan,
    backend: Backend | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Launched:
    done = submit_attempt(store, plan.spec, backend, new_run=True, on_warning=on_warning)
    record.mark_from(store, plan.spec, plan.source, plan.overrides)
    return done


# ------------------------------------------------------------------------------ diffs
def unified(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
        )
    )


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def config_changes(old: RunSpec, new: RunSpec) -> list[str]:
    """Dotted keys whose value differs, `key: old -> new` (the recorded overrides list aside)."""
    a = _flat(old.model_dump(mode="json", exclude={"overrides"}))
    b = _flat(new.model_dump(mode="json", exclude={"overrides"}))
    return [
        f"{k}: {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


@dataclass
class ScriptDiff:
    diff: str  # unified diff, empty when the scripts are the same
    old_name: str
    new_name: str
    config_changes: list[str]


def attempt_script(store: Store, run: str, attempt: int | None) -> tuple[int, str]:
    """(attempt number, the exact script it submitted): the store's copy, else the run
    directory's scripts/attempt-N.sh."""
    attempts = store.attempts(run)
    if not attempts:
        raise UsageError(f"run {shown(run)} has no attempts")
    if attempt is None:
        row = attempts[-1]
    else:
        match = [a for a in attempts if a.attempt_no == attempt]
        if not match:
            have = ", ".join(str(a.attempt_no) for a in attempts)
            raise UsageError(f"run {shown(run)} has no attempt {attempt}; it has {have}")
        row = match[0]
    text = row.script
    if not text:
        spec = spec_of(find_run(store, run))
        path = Path(spec.run_dir, rd.script_file(row.attempt_no))
        try:  # bounded, and refused (one line) if not a regular file (olmoctl.fileread)
            text = read_text(path, "the attempt's script", RUN_FILE, follow=False)
        except UsageError:
            if not os.path.lexists(path):
                raise UsageError(f"the script of {run} attempt {row.attempt_no} is lost") from None
            raise
    return row.attempt_no, text


def diff_run(
    store: Store,
    run: str,
    *,
    attempt: int | None,
    overrides: list[str],
    time: str | None = None,
) -> ScriptDiff:
    """The script that would be submitted for RUN now (its recorded config, `overrides` on
    top, today's olmoctl and template) against the one attempt K submitted."""
    row = find_run(store, run)
    spec = spec_of(row)
    no, old = attempt_script(store, run, attempt)
    now = SpecConfig.from_spec(
        spec, name=spec.name, overrides=overrides, time=time, exclude_nodes=spec.exclude_nodes
    ).build()
    # Same run directory: an override of cluster.runs_root is a real difference, nothing else.
    new = render(now)
    return ScriptDiff(
        unified(old, new, f"{run}/attempt-{no}.sh", f"{run}/now.sh"),
        f"{run}/attempt-{no}.sh",
        f"{run}/now.sh",
        config_changes(spec, now),
    )


def diff_clusters(
    recipe: str,
    a: str,
    b: str,
    *,
    nodes: int,
    name: str | None,
    time: str | None,
    overrides: list[str],
) -> ScriptDiff:
    """The same recipe rendered for clusters A and B (one run name for both, so only what the
    clusters make different shows)."""
    run_name = name or re.sub(r"[^A-Za-z0-9_.-]", "-", catalog.load_recipe(recipe).name)
    specs = [
        resolve(recipe, c, nodes=nodes, name=run_name, time=time, overrides=overrides)
        for c in (a, b)
    ]
    na, nb = (f"{s.cluster.name}/{run_name}.sh" for s in specs)
    return ScriptDiff(
        unified(render(specs[0]), render(specs[1]), na, nb),
        na,
        nb,
        [],  # the clusters differ everywhere; the script diff shows what it changes
    )
