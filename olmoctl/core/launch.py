"""launch: catalog -> RunSpec -> render -> store.create_run -> backend.submit -> attempt.

A failure at any step leaves no half-made run behind: the run is recorded (reserving its
name) before submission, and removed with its directory if submission fails.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from olmoctl.backends.base import Backend
from olmoctl.backends.files import LOCAL, RunFiles
from olmoctl.backends.registry import backend_for
from olmoctl.core import catalog, record
from olmoctl.core.render import render
from olmoctl.core.runfiles import run_dir_files
from olmoctl.core.store import Store
from olmoctl.core.yamlio import suggest
from olmoctl.errors import UsageError
from olmoctl.schemas import RunSpec


@dataclass
class Launched:
    spec: RunSpec
    job_id: str | None
    script: str
    attempt_no: int


def _dir_taken(runs_root: str, name: str) -> bool:
    return Path(runs_root, name, "spec.json").exists()


def pick_name(store: Store, base: str, runs_root: str) -> str:
    """`base`, or `base-2`, `base-3`... : the first name free in the store and on disk."""
    taken = set(store.run_names())
    for i in range(1, 10_000):
        name = base if i == 1 else f"{base}-{i}"
        if name not in taken and not _dir_taken(runs_root, name):
            return name
    raise UsageError(f"no free run name for {base!r}")


def prepare(
    store: Store,
    recipe: str,
    cluster: str,
    *,
    nodes: int,
    name: str | None,
    time_limit: str | None,
    overrides: list[str],
    exclude_nodes: list[str] | None = None,
    existing_ok: bool = False,
) -> RunSpec:
    """The spec `launch` would submit now: validated, with a free run name (when none is
    given) and the cluster's failed nodes excluded. `existing_ok` (for `render`) accepts
    a name that an existing run already has."""
    spec = catalog.resolve(
        recipe,
        cluster,
        nodes=nodes,
        name=name,
        time=time_limit,
        overrides=overrides,
        exclude_nodes=exclude_nodes,
    )
    if exclude_nodes is None:  # keep new runs off the nodes that failed on this cluster
        from olmoctl.core.health import excluded

        exclude_nodes = excluded(store, spec.cluster.name, spec.cluster.node_failure_threshold)
        if exclude_nodes:
            spec = spec.model_copy(update={"exclude_nodes": exclude_nodes})
    if name is None:
        free = pick_name(store, spec.name, spec.cluster.runs_root)
        if free != spec.name:
            spec = catalog.resolve(
                recipe,
                cluster,
                nodes=nodes,
                name=free,
                time=time_limit,
                overrides=overrides,
                exclude_nodes=exclude_nodes,
            )
    elif existing_ok:
        pass
    elif store.get_run(name) is not None:
        raise UsageError(f"run {name!r} already exists; pick another --name (e.g. {name}-2)")
    elif spec.cluster.ssh is None and _dir_taken(spec.cluster.runs_root, name):
        raise UsageError(f"run directory {spec.run_dir} already holds a run; pick another --name")
    return spec


def write_run_dir(
    spec: RunSpec,
    script: str,
    attempt_no: int,
    fs: RunFiles | None = None,
    *,
    new_run: bool = False,
) -> bool:
    """spec.json and scripts/attempt-N.sh, where the run directory is (`fs`: this machine by
    default, the login node for a remote cluster); True if the directory is new."""
    files = run_dir_files(spec, script, attempt_no)
    return (fs or LOCAL).write_run_dir(spec.run_dir, files, new_run=new_run)


def submit_attempt(
    store: Store,
    spec: RunSpec,
    backend: Backend | None = None,
    *,
    new_run: bool,
    array_task: tuple[str, int] | None = None,
) -> Launched:
    """Record, submit, and link the job id; undo the record if submission fails.
    array_task (array id, index): the "submission" is that task of a held job array (the
    sweep checked the backend once for the whole array)."""
    backend = backend or backend_for(spec)
    if array_task is None:
        backend.check_reachable(spec)
    script = render(spec)
    now = time.time()
    with store.tx() as conn:
        if new_run:
            if store.get_run(spec.name) is not None:
                raise UsageError(f"run {spec.name!r} already exists")
            conn.execute(
                "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, "
                "total_steps, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    spec.name,
                    spec.recipe.name,
                    spec.cluster.name,
                    spec.nodes,
                    "SUBMITTING",
                    spec.run_dir,
                    spec.model_dump_json(),
                    spec.recipe.train.total_steps,
                    now,
                    now,
                ),
            )
        attempt_no = store.add_attempt(
            conn,
            spec.name,
            cluster=spec.cluster.name,
            nodes=spec.nodes,
            state="SUBMITTING",
            submitted_at=now,
            script=script,
        )
        store.set_run_state(conn, spec.name, "SUBMITTING")
    fs = backend.files
    created_dir = False
    try:
        created_dir = write_run_dir(spec, script, attempt_no, fs, new_run=new_run)
        record.at_submit(store, spec, attempt_no, script)  # record.json: config, code, data
        if array_task is None:
            job_id, submitted = backend.submit(spec, script)
        else:
            job_id, submitted = backend.submit_array_task(spec, script, *array_task)
    except BaseException:
        with store.tx() as conn:
            if new_run:
                conn.execute("DELETE FROM runs WHERE name = ?", (spec.name,))
            else:
                conn.execute(
                    "DELETE FROM attempts WHERE run_name = ? AND attempt_no = ?",
                    (spec.name, attempt_no),
                )
                store.set_run_state(conn, spec.name, "FAILED")
        if new_run and created_dir:
            with contextlib.suppress(Exception):  # keep the error that got us here
                fs.remove_run_dir(spec.run_dir)
        raise
    with store.tx() as conn:
        conn.execute(
            "UPDATE attempts SET job_id = ?, state = 'PENDING', script = ? "
            "WHERE run_name = ? AND attempt_no = ?",
            (job_id, submitted, spec.name, attempt_no),
        )
        store.set_run_state(conn, spec.name, "PENDING")
    return Launched(spec, job_id, submitted, attempt_no)


def find_run(store: Store, name: str):
    row = store.get_run(name)
    if row is None:
        names = store.run_names()
        hint = suggest(name, names) if names else "; no runs recorded yet"
        raise UsageError(f"no run named {name!r}{hint}")
    return row


def spec_of(row) -> RunSpec:
    return RunSpec.model_validate(json.loads(row["spec_json"]))
