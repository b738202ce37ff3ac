"""Slurm job arrays for a sweep: the array script (task i runs point i's own attempt script),
sbatch/release/cancel of whole arrays, and submitting a plan's points as held arrays."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olmoctl import __version__
from olmoctl.core import launch as launch_mod
from olmoctl.core.render import spec_path
from olmoctl.core.sweep.points import Plan, Point, shape
from olmoctl.errors import OlmoctlError
from olmoctl.fileio import atomic_write
from olmoctl.schemas import RunSpec
from olmoctl.store import Store


def sweep_dir(spec: RunSpec, sweep: str) -> Path:
    return Path(spec.cluster.runs_root) / ".sweeps" / sweep


def chunks(points: list[Point], size: int) -> list[list[Point]]:
    return [points[i : i + size] for i in range(0, len(points), size)]


def render_array(
    sweep: str,
    points: list[Point],
    attempt_nos: list[int],
    *,
    max_parallel: int,
    out_dir: str,
    after: str | None = None,
) -> str:
    """A job array whose task i runs point i's own rendered script (pure)."""
    spec0 = points[0].spec
    n = len(points)
    limit = f"%{max_parallel}" if max_parallel < n else ""
    lines = [
        "#!/bin/bash",
        f"# Rendered by olmoctl {__version__} for sweep {sweep}: a job array of {n} points "
        f"({points[0].name} .. {points[-1].name}).",
        "# Task i runs its point's own script (RUN_DIR/scripts/attempt-N.sh), whose #SBATCH",
        "# lines all points share and are repeated here. Submitted held (--hold) and released",
        "# once every point is recorded.",
        f"#SBATCH --job-name={sweep}",
        f"#SBATCH --array=0-{n - 1}{limit}",
        *shape(spec0),
        f"#SBATCH --output={out_dir}/array-%A_%a.out",
    ]
    if after:
        lines.append(f"#SBATCH --dependency=afterany:{after}")
    lines += ["", "set -euo pipefail", 'case "${SLURM_ARRAY_TASK_ID:?not an array task}" in']
    for i, (p, no) in enumerate(zip(points, attempt_nos, strict=True)):
        lines.append(f"  {i}) run_dir={shlex.quote(p.spec.run_dir)}; attempt={no} ;;")
    lines += [
        '  *) echo "olmoctl: no sweep point for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
        "esac",
        'id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        'mkdir -p "$run_dir/logs"',
        "# Rank files are named after Slurm's raw job id (srun's %j): link them under the",
        "# array task id that olmoctl records, so `olmoctl logs` finds them.",
        f"for rank in $(seq 0 {spec0.nodes * spec0.cluster.tasks_per_node - 1}); do",
        '  ln -sfn "${SLURM_JOB_ID}-rank${rank}.out" "$run_dir/logs/${id}-rank${rank}.out"',
        "done",
        'exec >>"$run_dir/logs/slurm-${id}.out" 2>&1',
        'exec bash "$run_dir/scripts/attempt-${attempt}.sh"',
        "",
    ]
    return "\n".join(lines)


@dataclass
class SlurmArrays:
    """sbatch/scontrol/scancel for whole arrays (each point's record still goes through
    launch.submit_attempt, see _ArrayTask)."""

    def submit(self, script_path: str) -> str:
        """Submit held: no task starts before every point is recorded and its pickle
        written; release() lets them go."""
        from olmoctl.backends import slurm_cli

        res = slurm_cli.run(["sbatch", "--parsable", "--hold", script_path])
        if res.returncode != 0:
            why = (res.stderr.strip().splitlines() or ["no answer"])[-1]
            raise OlmoctlError(f"sbatch failed: {why}")
        return res.stdout.strip().split(";")[0]

    def release(self, job_id: str) -> None:
        from olmoctl.backends import slurm_cli

        res = slurm_cli.run(["scontrol", "release", job_id])
        if res.returncode != 0:
            raise OlmoctlError(f"scontrol release {job_id} failed: {res.stderr.strip()}")

    def cancel(self, job_id: str) -> None:
        from olmoctl.backends import slurm_cli

        slurm_cli.run(["scancel", job_id])

    def write_job(self, spec: RunSpec, job_id: str) -> None:
        """The pickle submitit's job side (`python -m submitit.core._submit FOLDER`) loads:
        FOLDER/<array>_<task>_submitted.pkl, as submitit itself names an array task's."""
        from submitit.helpers import DelayedSubmission

        from olmoctl.train.submit_entry import TrainJob

        folder = Path(spec.run_dir) / "submitit"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{job_id}_submitted.pkl.tmp"
        DelayedSubmission(TrainJob(), spec_path(spec)).dump(tmp)
        os.replace(tmp, folder / f"{job_id}_submitted.pkl")


@dataclass
class _ArrayTask:
    """A Backend for launch.submit_attempt whose "submission" is task `index` of an array
    already submitted (held): it writes the task's pickle and hands back `ARRAY_INDEX`."""

    arrays: SlurmArrays
    array_id: str
    index: int

    def check_reachable(self, spec: RunSpec) -> None:
        return None  # checked once for the whole sweep

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        job_id = f"{self.array_id}_{self.index}"
        self.arrays.write_job(spec, job_id)
        return job_id, script

    def query(self, job_ids: list[str]) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def cancel(self, job_id: str) -> None:  # pragma: no cover - never called
        raise NotImplementedError


def _next_attempt(store: Store, name: str) -> int:
    return len(store.attempts(name)) + 1


def submit_arrays(store: Store, p: Plan, arrays: SlurmArrays, submitted: list[str]) -> None:
    """Per chunk: submit its array held, note it on the sweep's row, record every point's
    attempt as task i (launch.submit_attempt), then release it. `submitted` collects the
    array ids so that create() can cancel them if a later step fails."""
    spec0 = p.points[0].spec
    sdir = sweep_dir(spec0, p.name)
    sdir.mkdir(parents=True, exist_ok=True)
    after = None
    for k, chunk in enumerate(chunks(p.points, spec0.cluster.max_array_size)):
        nos = [_next_attempt(store, x.name) for x in chunk]
        text = render_array(
            p.name, chunk, nos, max_parallel=p.max_parallel, out_dir=str(sdir), after=after
        )
        path = sdir / f"array-{k}.sh"
        atomic_write(path, text, mode=0o755)
        job = arrays.submit(str(path))
        submitted.append(job)
        with store.tx() as tx:
            entry = {"array": job, "script": str(path), "points": [x.name for x in chunk]}
            tx.add_sweep_job(p.name, entry)
        for i, (x, no) in enumerate(zip(chunk, nos, strict=True)):
            done = launch_mod.submit_attempt(
                store, x.spec, _ArrayTask(arrays, job, i), new_run=False
            )
            if done.attempt_no != no:
                raise OlmoctlError(f"{x.name}: attempt {done.attempt_no} is not the expected {no}")
        arrays.release(job)
        after = job
