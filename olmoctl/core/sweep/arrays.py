"""Job arrays for a sweep: the array script (task i runs point i's own attempt script), and
submitting a plan's points as held arrays. Submitting, holding and releasing them, and what
a task loads, are the backend's (Backend.submit_array & co, backends/slurm.py)."""

from __future__ import annotations

from pathlib import Path

from olmoctl import __version__
from olmoctl.backends.base import Backend
from olmoctl.core.launch import submit as launch_mod
from olmoctl.core.sweep.points import Plan, Point, shape
from olmoctl.errors import OlmoctlError
from olmoctl.fileio import atomic_write
from olmoctl.schemas import RunSpec
from olmoctl.shellquote import quote
from olmoctl.shellquote import sbatch_word as word
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
    """A job array whose task i runs point i's own rendered script (pure). Every value goes
    through the one quoting family (olmoctl.shellquote): `word` in #SBATCH lines and
    comments (refused unless it needs no quoting), `quote` in shell text."""
    spec0 = points[0].spec
    n = len(points)
    limit = f"%{int(max_parallel)}" if max_parallel < n else ""
    first, last = word(points[0].name), word(points[-1].name)
    lines = [
        "#!/bin/bash",
        f"# Rendered by olmoctl {word(__version__)} for sweep {word(sweep)}: a job array of "
        f"{n} points ({first} .. {last}).",
        "# Task i runs its point's own script (RUN_DIR/scripts/attempt-N.sh), whose #SBATCH",
        "# lines all points share and are repeated here. Submitted held (--hold) and released",
        "# once every point is recorded.",
        f"#SBATCH --job-name={word(sweep)}",
        f"#SBATCH --array=0-{n - 1}{limit}",
        *shape(spec0),
        f"#SBATCH --output={word(out_dir)}/array-%A_%a.out",
    ]
    if after:
        lines.append(f"#SBATCH --dependency=afterany:{word(after)}")
    lines += ["", "set -euo pipefail", 'case "${SLURM_ARRAY_TASK_ID:?not an array task}" in']
    for i, (p, no) in enumerate(zip(points, attempt_nos, strict=True)):
        lines.append(f"  {i}) run_dir={quote(p.spec.run_dir)}; attempt={int(no)} ;;")
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


def _next_attempt(store: Store, name: str) -> int:
    return len(store.attempts(name)) + 1


def submit_arrays(store: Store, p: Plan, backend: Backend, submitted: list[str]) -> None:
    """Per chunk: submit its array held, note it on the sweep's row, record every point's
    attempt as task i (launch.submit_attempt with array_task), then release it. `submitted`
    collects the array ids so that create() can cancel them if a later step fails."""
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
        job = backend.submit_array(str(path))
        submitted.append(job)
        with store.tx() as tx:
            entry = {"array": job, "script": str(path), "points": [x.name for x in chunk]}
            tx.add_sweep_job(p.name, entry)
        for i, (x, no) in enumerate(zip(chunk, nos, strict=True)):
            done = launch_mod.submit_attempt(
                store, x.spec, backend, new_run=False, array_task=(job, i)
            )
            if done.attempt_no != no:
                raise OlmoctlError(f"{x.name}: attempt {done.attempt_no} is not the expected {no}")
        backend.release_array(job)
        after = job
