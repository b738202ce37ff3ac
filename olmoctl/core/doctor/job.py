"""`olmoctl doctor`: a short job with the profile, container and environment a real run gets
(the same template, the preflight's command in the task slot), then one line per check.

    spec = prepare("tiny", "dev", nodes=None, time_limit=None, overrides=[])
    report = run(spec, timeout_s=900)      # submits, waits, reads RUN_DIR/preflight/

The job side is olmoctl.train.burnin.preflight; the verdict is core/doctor/report.py. The doctor's
run directory (runs_root/doctor-CLUSTER-STAMP) stays, with its logs; nothing goes into the
state store (it is not a run)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from olmoctl.backends.base import Backend
from olmoctl.backends.files import owner_writes
from olmoctl.backends.jobfiles import preflight_command
from olmoctl.backends.registry import allocates_nodes, backend_for
from olmoctl.core.doctor.report import Report, fold
from olmoctl.core.launch.render import render
from olmoctl.core.launch.specs import SpecConfig
from olmoctl.errors import OlmoctlError, UsageError, shown
from olmoctl.fileread import Refused
from olmoctl.schemas import RunSpec
from olmoctl.schemas import contract as rd
from olmoctl.schemas import preflight as pf
from olmoctl.schemas.bounds import parse_time
from olmoctl.schemas.preflight import RankReport
from olmoctl.store.models import AttemptState

SCRIPT = f"{rd.SCRIPTS_DIR}/doctor.sh"
DEFAULT_TIME = "00:10:00"  # imports, a few probes and one all-reduce: minutes at most
POLL_S = 1.0
REPORT_MAX = 1 << 20  # one rank's RUN_DIR/preflight/rank-R.json: a few KiB


def prepare(
    recipe: str, cluster: str, *, nodes: int | None, time_limit: str | None, overrides: list[str]
) -> RunSpec:
    """The doctor job's spec: the recipe (for its data files) on the cluster, as `launch`
    would build it, on 2 nodes where the cluster has them (so the all-reduce crosses
    nodes). The batch size is set to one sample per rank: nothing trains, and any node
    count must be accepted."""
    base = SpecConfig.from_catalog(recipe, cluster, overrides=overrides)
    _, profile = base.validated(fill_account=True)
    multi = allocates_nodes(profile.scheduler) and profile.max_nodes >= 2
    n = nodes if nodes is not None else (2 if multi else 1)
    world = n * profile.tasks_per_node
    if time_limit is None:
        fits = parse_time(DEFAULT_TIME) <= profile.max_time_s
        time_limit = DEFAULT_TIME if fits else profile.max_time
    # Two doctors in one second get two directories.
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    batch = ["train.micro_batch_size=1", f"train.global_batch_size={world}"]
    return base.replace(
        nodes=n,
        time=time_limit,
        name=f"doctor-{profile.name[:32]}-{stamp}",
        overrides=[*overrides, *batch],
    ).build()


def _reports(backend: Backend, spec: RunSpec) -> tuple[dict[int, RankReport], dict[int, str]]:
    """(rank -> its report, rank -> why its file was refused: not a regular file)."""
    out: dict[int, RankReport] = {}
    refused: dict[int, str] = {}
    folder = f"{spec.run_dir}/{pf.PREFLIGHT_DIR}"
    for path in backend.files.glob(folder, "rank-*.json"):
        try:
            rep = RankReport.model_validate_json(backend.files.read_tail(path, REPORT_MAX))
        except Refused as e:
            rank = Path(path).name.removeprefix("rank-").removesuffix(".json")
            if rank.isascii() and rank.isdigit() and len(rank) <= 9:
                refused[int(rank)] = f"its report was not read: {e}"
            continue
        except ValueError:
            continue  # a torn or foreign file: that rank counts as not reported
        out[rep.rank] = rep
    return out, refused


def _last_line(backend: Backend, path: Path | None) -> str:
    if path is None:
        return ""
    try:
        text = backend.files.read_tail(str(path), 4096).decode(errors="replace")
    except Refused:
        return ""  # not a regular file: no last line to show
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _missing_why(backend: Backend, spec: RunSpec, job_id: str, world: int) -> dict[int, str]:
    """rank -> the last line of its log (else of the batch script's log), for the ranks
    that wrote no report."""
    logs = backend.rank_logs(spec.run_dir, job_id)
    batch = _last_line(backend, backend.batch_log(spec.run_dir, job_id))
    out = {}
    for rank in range(world):
        line = _last_line(backend, logs.get(rank))
        if line:
            out[rank] = f"its log ends: {line}"
        elif batch:
            out[rank] = f"the batch log ends: {batch}"
    return out


def _wait(
    backend: Backend, job_id: str, deadline: float, tick: Callable[[str], None] | None
) -> str | None:
    """The job's last state seen while it was queued or running; None at the deadline."""
    state = "PENDING"
    while True:
        info = backend.queued([job_id]).get(job_id)
        if info is None or not AttemptState(info.state).is_live:
            return info.state if info is not None else state
        state = info.state
        if tick is not None:
            tick(state)
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_S)


def run(spec: RunSpec, *, timeout_s: float, tick: Callable[[str], None] | None = None) -> Report:
    """Submit the preflight job, wait for it (at most timeout_s; then it is cancelled) and
    fold the ranks' reports into one line per check."""
    backend = backend_for(spec)
    if backend.files.remote:
        raise UsageError(
            f"cluster {shown(spec.cluster.name)} is reached over ssh: run `olmoctl doctor` on "
            "its login node (the preflight reads its reports from the run directory there)"
        )
    backend.check_reachable(spec)
    script = render(spec, task_command=preflight_command(spec))
    files = {rd.SPEC_FILE: (spec.model_dump_json(indent=2), 0o644), SCRIPT: (script, 0o755)}
    with owner_writes():  # umask 002 or not: what the job runs and writes is this user's
        backend.files.write_run_dir(spec.run_dir, files, new_run=True)
        job_id = backend.submit_script(spec, f"{spec.run_dir}/{SCRIPT}")
    try:
        end = _wait(backend, job_id, time.monotonic() + timeout_s, tick)
    except KeyboardInterrupt:  # Ctrl-C: the doctor's job goes with it
        backend.cancel(job_id, spec.run_dir)
        raise
    if end is None:
        backend.cancel(job_id, spec.run_dir)
        raise OlmoctlError(
            f"doctor job {job_id} did not end within {timeout_s:.0f} s (cancelled); its "
            f"logs are in {spec.run_dir}/{rd.LOGS_DIR}; raise --timeout if the queue is long"
        )
    state = end
    if AttemptState(end).is_live:  # it left the queue unseen: ask accounting
        # (a job the backend runs itself has no accounting: its reports say how it went)
        final = backend.query({job_id: spec.run_dir}).jobs.get(job_id)
        known = backend.batch_script and final is not None and final.state != "UNKNOWN"
        state = final.state if known and final is not None else "ENDED"
    reports, refused = _reports(backend, spec)
    world = spec.world_size
    missing = _missing_why(backend, spec, job_id, world) if len(reports) < world else {}
    missing.update(refused)
    lines = fold(reports, world, spec.cluster.gpus_per_node, missing)
    return Report(spec.cluster.name, job_id, state, spec.run_dir, spec.nodes, world, lines)
