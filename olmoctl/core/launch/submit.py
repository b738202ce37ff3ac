"""launch: catalog -> RunSpec -> render -> store.create_run -> backend.submit -> attempt.

A failure at any step leaves no half-made run behind: the run is recorded (reserving its
name) before submission, and removed with its directory if submission fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from olmoctl.backends.base import Backend
from olmoctl.backends.files import LOCAL, RunFiles, owner_writes
from olmoctl.backends.registry import backend_for
from olmoctl.core.launch import checks as launch_checks
from olmoctl.core.launch.render import render
from olmoctl.core.launch.runfiles import run_dir_files
from olmoctl.core.launch.specs import SpecConfig, for_new_run
from olmoctl.core.records import record
from olmoctl.schemas import RunSpec
from olmoctl.schemas.errors import validate
from olmoctl.store import AttemptState, Store


@dataclass
class Launched:
    spec: RunSpec
    job_id: str | None
    script: str
    attempt_no: int


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
    spare_nodes: int | None = None,
    force: bool = False,
) -> RunSpec:
    """The spec `launch` would submit now: validated, with a free run name (when none is
    given) and the cluster's failed nodes excluded. `existing_ok` (for `render`) accepts
    a name that an existing run already has. A run that would not fit in GPU memory or
    asks for more time than the site allows its node count is refused unless `force`
    (core/launch/checks.py)."""
    config = SpecConfig.from_catalog(
        recipe,
        cluster,
        nodes=nodes,
        name=name,
        time=time_limit,
        overrides=overrides,
        exclude_nodes=exclude_nodes,
        spare_nodes=spare_nodes,
    )
    spec = config.build()
    launch_checks.check(spec, force=force)
    if exclude_nodes is None:  # keep new runs off the nodes that failed on this cluster
        from olmoctl.core.track.health import excluded

        exclude_nodes = excluded(store, spec.cluster.name, spec.cluster.node_failure_threshold)
        if exclude_nodes:
            config = config.replace(exclude_nodes=exclude_nodes)
            # Validated again (not model_copy): the names come from the store.
            data = {**spec.model_dump(), "exclude_nodes": exclude_nodes}
            spec = validate(RunSpec, data, "node health in the state store")
    return for_new_run(store, config, spec, existing_ok=existing_ok)


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
    on_warning: Callable[[str], None] | None = None,
) -> Launched:
    """Record, submit, and link the job id; undo the record if submission fails.
    array_task (array id, index): the "submission" is that task of a held job array (the
    sweep checked the backend once for the whole array). on_warning: told, before anything
    is recorded, when the run directory's filesystem cannot hold the run's checkpoints
    (a remote cluster answers that with its reachability check: no extra round trip)."""
    backend = backend or backend_for(spec)
    if array_task is None:
        backend.check_reachable(spec)
    if on_warning is not None and (text := launch_checks.space_warning([spec], backend.files)):
        on_warning(text)
    script = render(spec)
    now = time.time()
    with store.tx() as tx:
        if new_run:
            tx.create_run(spec, state=AttemptState.SUBMITTING, created_at=now)
        attempt_no = tx.add_attempt(
            spec.name,
            cluster=spec.cluster.name,
            nodes=spec.nodes,
            state=AttemptState.SUBMITTING,
            submitted_at=now,
            script=script,
        )
        tx.set_run_state(spec.name, AttemptState.SUBMITTING)
    fs = backend.files
    created_dir = False
    try:
        with owner_writes():  # umask 002 or not: no one else may write what the job loads
            created_dir = write_run_dir(spec, script, attempt_no, fs, new_run=new_run)
            record.at_submit(store, spec, attempt_no, script)  # record.json: config, code, data
            if array_task is None:
                job_id, submitted = backend.submit(spec, script)
            else:
                job_id, submitted = backend.submit_array_task(spec, script, *array_task)
    except BaseException:
        with store.tx() as tx:
            if new_run:
                tx.delete_run(spec.name)
            else:
                tx.delete_attempt(spec.name, attempt_no)
                tx.set_run_state(spec.name, AttemptState.FAILED)
        if new_run and created_dir:
            with contextlib.suppress(Exception):  # keep the error that got us here
                fs.remove_run_dir(spec.run_dir)
        if new_run:
            store.discard_if_new()  # a first launch that failed leaves no state dir
        raise
    with store.tx() as tx:
        tx.set_submitted(spec.name, attempt_no, job_id, submitted)
        tx.set_run_state(spec.name, AttemptState.PENDING)
    return Launched(spec, job_id, submitted, attempt_no)
