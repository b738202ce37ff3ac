"""Sweeps: a grid and/or random samples of overrides become ordinary runs SWEEP-0..n.

Every point is resolved (validated) before anything is recorded or submitted. Submission
returns at once:
- single-node points of one shape go as Slurm job arrays (`--array=0-K%P`), chunks of at
  most the cluster's `max_array_size`, each chunk after the previous one
  (`--dependency=afterany`), so Slurm itself keeps at most P points running;
- otherwise (multi-node points, several shapes, `--no-array`, a local cluster) every point
  is its own job with at most P in flight: `advance()` (from `olmoctl sweep --continue` or a
  future `watch`) submits more as points end.
Array tasks run a small dispatcher that executes the point's own rendered script, so each
point's `scripts/attempt-1.sh` is exactly what `olmoctl render` prints for it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from olmoctl import __version__
from olmoctl.backends.base import Backend, backend_for
from olmoctl.core import catalog
from olmoctl.core import launch as launch_mod
from olmoctl.core.fileio import atomic_write
from olmoctl.core.render import render, spec_path
from olmoctl.core.store import LIVE_STATES, Store
from olmoctl.core.yamlio import explain, load_yaml_mapping, suggest
from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.schemas import RunSpec

WAITING = "WAITING"  # recorded, not yet submitted (olmoctl's own state, not Slurm's)
MAX_POINTS = 10_000
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
_SHAPE_SKIP = ("--job-name=", "--output=")


# -- definition ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    key: str
    kind: str  # one of DISTRIBUTIONS
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()

    def draw(self, rng: random.Random) -> str:
        if self.kind == "choice":
            return rng.choice(self.choices)
        if self.kind == "int":
            return str(rng.randint(int(self.low), int(self.high)))
        if self.kind == "loguniform":
            return format(math.exp(rng.uniform(math.log(self.low), math.log(self.high))), ".4g")
        return format(rng.uniform(self.low, self.high), ".4g")


@dataclass
class Definition:
    recipe: str
    cluster: str
    nodes: int = 1
    name: str | None = None
    time: str | None = None
    max_parallel: int | None = None
    array: bool | None = None  # None: arrays where they fit
    overrides: list[str] = field(default_factory=list)
    grid: dict[str, list[str]] = field(default_factory=dict)
    random: int | None = None
    seed: int = 0
    samples: dict[str, Sample] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "samples"}
        d["samples"] = {k: _sample_text(s) for k, s in self.samples.items()}
        return d


def _sample_text(s: Sample) -> str:
    if s.kind == "choice":
        return "choice:" + ",".join(s.choices)
    if s.kind == "int":
        return f"int:{int(s.low)}:{int(s.high)}"
    return f"{s.kind}:{s.low:g}:{s.high:g}"


def split_values(text: str) -> list[str]:
    """`a,b,[1,2]` -> ['a', 'b', '[1,2]']: commas inside brackets do not split."""
    out, cur, depth = [], [], 0
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _key_value(item: str, flag: str, example: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or not value.strip():
        raise UsageError(f"{flag} {item!r}: expected key.path=..., e.g. {flag} {example}")
    return key, value.strip()


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, text = _key_value(item, "--grid", "optim.lr=1e-4,3e-4")
        values = split_values(text)
        if any(v == "" for v in values):
            raise UsageError(f"--grid {item!r}: an empty value (two commas in a row?)")
        if key in grid:
            raise UsageError(f"--grid {key} given twice; list all its values once: {key}=a,b,c")
        grid[key] = values
    return grid


def parse_sample(key: str, spec: str) -> Sample:
    kind, _, rest = spec.partition(":")
    where = f"--sample {key}={spec}"
    if kind not in DISTRIBUTIONS:
        raise UsageError(
            f"{where}: unknown distribution {kind!r}; use loguniform:A:B, uniform:A:B, "
            "int:A:B or choice:X,Y"
        )
    if kind == "choice":
        choices = tuple(split_values(rest))
        if not rest or any(c == "" for c in choices):
            raise UsageError(f"{where}: choice needs values, e.g. choice:500,1000")
        return Sample(key, kind, choices=choices)
    parts = rest.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = (int(p) for p in parts) if kind == "int" else (float(p) for p in parts)
    except ValueError:
        num = "integers" if kind == "int" else "numbers"
        raise UsageError(f"{where}: expected {kind}:LOW:HIGH with {num}") from None
    if not low < high:
        raise UsageError(f"{where}: LOW must be below HIGH")
    if kind == "loguniform" and low <= 0:
        raise UsageError(f"{where}: loguniform needs LOW > 0")
    return Sample(key, kind, float(low), float(high))


def parse_samples(items: list[str]) -> dict[str, Sample]:
    out: dict[str, Sample] = {}
    for item in items:
        key, spec = _key_value(item, "--sample", "optim.lr=loguniform:1e-5:1e-3")
        if key in out:
            raise UsageError(f"--sample {key} given twice")
        out[key] = parse_sample(key, spec)
    return out


class SweepFile(BaseModel):
    """A sweep file: the same content as the flags (`grid`/`sample` map keys to values)."""

    model_config = ConfigDict(extra="forbid")
    recipe: str | None = None
    cluster: str | None = None
    name: str | None = None
    nodes: int | None = Field(default=None, gt=0)
    time: str | None = None
    max_parallel: int | None = Field(default=None, gt=0)
    array: bool | None = None
    overrides: dict[str, Any] | list[str] = Field(default_factory=list)
    grid: dict[str, list[Any] | str] = Field(default_factory=dict)
    random: int | None = Field(default=None, gt=0)
    seed: int | None = None
    sample: dict[str, str] = Field(default_factory=dict)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value)  # lists and mappings: JSON is YAML flow style


def load_file(path: str) -> SweepFile:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UsageError(f"sweep file {path!r} does not exist")
    try:
        return SweepFile.model_validate(load_yaml_mapping(p))
    except ValidationError as e:
        raise UsageError(explain(e, SweepFile, str(p))) from None


def definition(
    *,
    recipe: str | None,
    cluster: str | None,
    file: str | None = None,
    nodes: int | None = None,
    name: str | None = None,
    time_limit: str | None = None,
    max_parallel: int | None = None,
    array: bool | None = None,
    overrides: list[str] | None = None,
    grid: list[str] | None = None,
    random_count: int | None = None,
    seed: int | None = None,
    samples: list[str] | None = None,
) -> Definition:
    """Flags (and a sweep file, whose values the flags override) -> a checked Definition."""
    f = load_file(file) if file else SweepFile()
    recipe, cluster = recipe or f.recipe, cluster or f.cluster
    if not recipe or not cluster:
        missing = "a recipe" if not recipe else "--cluster"
        raise UsageError(f"sweep needs {missing} (on the command line or in the sweep file)")
    file_overrides = (
        [f"{k}={_as_text(v)}" for k, v in f.overrides.items()]
        if isinstance(f.overrides, dict)
        else list(f.overrides)
    )
    file_grid: dict[str, list[str]] = {}
    for key, values in f.grid.items():
        vals = split_values(values) if isinstance(values, str) else [_as_text(v) for v in values]
        if not vals or any(v == "" for v in vals):
            raise UsageError(f"{file}: grid {key}: give at least one non-empty value")
        file_grid[key] = vals
    file_samples = {k: parse_sample(k, s) for k, s in f.sample.items()}
    d = Definition(
        recipe=recipe,
        cluster=cluster,
        nodes=nodes if nodes is not None else (f.nodes or 1),
        name=name or f.name,
        time=time_limit or f.time,
        max_parallel=max_parallel if max_parallel is not None else f.max_parallel,
        array=array if array is not None else f.array,
        overrides=file_overrides + list(overrides or []),
        grid={**file_grid, **parse_grid(list(grid or []))},
        random=random_count if random_count is not None else f.random,
        seed=seed if seed is not None else (f.seed or 0),
        samples={**file_samples, **parse_samples(list(samples or []))},
    )
    if d.max_parallel is not None and d.max_parallel < 1:
        raise UsageError(f"--max-parallel must be at least 1, got {d.max_parallel}")
    if d.random is not None and d.random < 1:
        raise UsageError(f"--random must be at least 1, got {d.random}")
    if d.samples and d.random is None:
        raise UsageError("--sample needs --random N (how many points to draw)")
    if d.random is not None and not d.samples:
        raise UsageError("--random needs at least one --sample key=DISTRIBUTION")
    both = sorted(set(d.grid) & set(d.samples))
    if both:
        raise UsageError(f"{both[0]} is both a grid key and a sampled key; pick one")
    if not d.grid and d.random is None:
        raise UsageError(
            "nothing to sweep: give --grid key=a,b, --random N --sample ..., or a file"
        )
    return d


def expand(d: Definition) -> list[dict[str, str]]:
    """The points' parameters, in order: the grid's cartesian product (last key fastest),
    crossed with `random` draws when sampling (same seed, same points)."""
    keys = list(d.grid)
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*d.grid.values())]
    total = len(combos) * (d.random or 1)
    if total > MAX_POINTS:
        raise UsageError(f"the sweep has {total} points; the limit is {MAX_POINTS}")
    if d.random is None:
        return combos
    rng = random.Random(d.seed)
    points = []
    for _ in range(d.random):
        drawn = {k: s.draw(rng) for k, s in d.samples.items()}
        points.extend({**combo, **drawn} for combo in combos)
    return points


def point_overrides(params: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in params.items()]


# -- planning (validation) -----------------------------------------------------------------
@dataclass
class Point:
    index: int
    params: dict[str, str]
    spec: RunSpec

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Plan:
    name: str
    definition: Definition
    points: list[Point]
    mode: str  # "array" or "jobs"
    max_parallel: int
    note: str = ""

    def shapes(self) -> dict[tuple[str, ...], list[int]]:
        out: dict[tuple[str, ...], list[int]] = {}
        for p in self.points:
            out.setdefault(shape(p.spec), []).append(p.index)
        return out


def shape(spec: RunSpec) -> tuple[str, ...]:
    """What Slurm sees of a point: its #SBATCH lines, less its name and output file."""
    if spec.cluster.scheduler != "slurm":
        return (spec.cluster.scheduler, f"nodes={spec.nodes}", spec.time)
    return tuple(
        line
        for line in render(spec).splitlines()
        if line.startswith("#SBATCH ") and not line[8:].startswith(_SHAPE_SKIP)
    )


def _names_free(store: Store, base: str, count: int, runs_root: str) -> bool:
    if get(store, base, missing_ok=True) is not None:
        return False
    taken = set(store.run_names())
    return not any(
        f"{base}-{i}" in taken or launch_mod._dir_taken(runs_root, f"{base}-{i}")
        for i in range(count)
    )


def plan(store: Store, d: Definition) -> Plan:
    """Expand and resolve every point; the first bad one rejects the whole sweep."""
    params = expand(d)
    first = catalog.resolve(
        d.recipe, d.cluster, nodes=d.nodes, time=d.time, overrides=list(d.overrides)
    )
    runs_root = first.cluster.runs_root
    if d.name is not None:
        name = d.name
        if not _names_free(store, name, len(params), runs_root):
            raise UsageError(
                f"sweep {name!r} (or a run {name}-N) already exists; pick another --name"
            )
    else:
        base = f"{catalog.find('recipes', d.recipe).name}-sweep"
        candidates = [base] + [f"{base}{i}" for i in range(2, 1000)]
        free = [n for n in candidates[:50] if _names_free(store, n, len(params), runs_root)]
        if not free:
            raise UsageError(f"no free sweep name for {base!r}; pass --name")
        name = free[0]
    points = []
    for i, p in enumerate(params):
        overrides = list(d.overrides) + point_overrides(p)
        try:
            spec = catalog.resolve(
                d.recipe,
                d.cluster,
                nodes=d.nodes,
                name=f"{name}-{i}",
                time=d.time,
                overrides=overrides,
            )
        except UsageError as e:
            where = "-o " + " -o ".join(overrides) + ": "
            msg = str(e).removeprefix(where)
            shown = ", ".join(f"{k}={v}" for k, v in p.items())
            raise UsageError(f"sweep point {i} ({shown}) is invalid: {msg}") from None
        points.append(Point(i, p, spec))
    max_parallel = d.max_parallel or len(points)
    one_shape = len({shape(pt.spec) for pt in points}) == 1
    fits = first.cluster.scheduler == "slurm" and d.nodes == 1 and one_shape
    if d.array and not fits:
        why = (
            "its points span several nodes"
            if d.nodes > 1
            else "its points differ in their #SBATCH lines"
            if first.cluster.scheduler == "slurm"
            else f"cluster {first.cluster.name!r} is not Slurm"
        )
        raise UsageError(f"--array: this sweep cannot be one job array: {why}")
    mode = "array" if fits and d.array is not False else "jobs"
    note = ""
    if mode == "jobs" and max_parallel < len(points):
        note = f"at most {max_parallel} in flight; `olmoctl sweep --continue {name}` submits more"
    return Plan(name, d, points, mode, max_parallel, note)


# -- array scripts -------------------------------------------------------------------------
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


# -- the store -----------------------------------------------------------------------------
def get(store: Store, name: str, *, missing_ok: bool = False):
    row = store.connect().execute("SELECT * FROM sweeps WHERE name = ?", (name,)).fetchone()
    if row is None and not missing_ok:
        names = [r["name"] for r in store.connect().execute("SELECT name FROM sweeps")]
        hint = suggest(name, names) if names else "; no sweeps recorded yet"
        raise UsageError(f"no sweep named {name!r}{hint}")
    return row


def point_names(row) -> list[str]:
    return [p["name"] for p in json.loads(row["points_json"])]


def _record(store: Store, p: Plan) -> None:
    now = time.time()
    spec0 = p.points[0].spec
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO sweeps (name, recipe, cluster, nodes, max_parallel, mode, "
            "definition_json, points_json, jobs_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                p.name,
                spec0.recipe.name,
                spec0.cluster.name,
                spec0.nodes,
                p.max_parallel,
                p.mode,
                json.dumps(p.definition.to_json()),
                json.dumps(
                    [{"index": x.index, "name": x.name, "params": x.params} for x in p.points]
                ),
                "[]",
                now,
            ),
        )
        for x in p.points:
            s = x.spec
            conn.execute(
                "INSERT INTO runs (name, recipe, cluster, nodes, state, run_dir, spec_json, "
                "total_steps, sweep, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    s.name,
                    s.recipe.name,
                    s.cluster.name,
                    s.nodes,
                    WAITING,
                    s.run_dir,
                    s.model_dump_json(),
                    s.recipe.train.total_steps,
                    p.name,
                    now + x.index * 1e-6,  # keeps `status` in point order
                    now,
                ),
            )


def _undo(store: Store, p: Plan, created: list[str]) -> None:
    with store.tx() as conn:
        conn.execute("DELETE FROM runs WHERE sweep = ?", (p.name,))
        conn.execute("DELETE FROM sweeps WHERE name = ?", (p.name,))
    for d in created:
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class Created:
    name: str
    mode: str
    max_parallel: int
    points: list[dict[str, Any]]  # name, params, job_id (None while waiting)
    arrays: list[str] = field(default_factory=list)
    note: str = ""


def create(
    store: Store,
    p: Plan,
    *,
    backend: Backend | None = None,
    arrays: SlurmArrays | None = None,
) -> Created:
    """Record the sweep and its points, and submit what may start now (returns at once).
    Any failure cancels what was submitted and removes every record and directory."""
    spec0 = p.points[0].spec
    backend = backend or backend_for(spec0)
    backend.check_reachable(spec0)
    _record(store, p)
    created = [x.spec.run_dir for x in p.points if not Path(x.spec.run_dir).exists()]
    sdir = sweep_dir(spec0, p.name)
    if not sdir.exists():
        created.append(str(sdir))
    submitted_arrays: list[str] = []
    try:
        if p.mode == "array":
            arrays = arrays or SlurmArrays()
            _submit_arrays(store, p, arrays, submitted_arrays)
        else:
            advance(store, p.name, refresh_first=False, backend=backend)
    except BaseException:
        for job in submitted_arrays:
            (arrays or SlurmArrays()).cancel(job)
        if p.mode == "jobs":
            for name in point_names(get(store, p.name)):
                last = store.last_attempt(name)
                if last is not None and last["job_id"]:
                    with contextlib.suppress(OlmoctlError):
                        backend.cancel(last["job_id"])
        _undo(store, p, created)
        raise
    last = {x.name: store.last_attempt(x.name) for x in p.points}
    jobs = {n: (a["job_id"] if a is not None else None) for n, a in last.items()}
    return Created(
        p.name,
        p.mode,
        p.max_parallel,
        [{"name": x.name, "params": x.params, "job_id": jobs.get(x.name)} for x in p.points],
        submitted_arrays,
        p.note,
    )


def _next_attempt(store: Store, name: str) -> int:
    return len(store.attempts(name)) + 1


def _submit_arrays(store: Store, p: Plan, arrays: SlurmArrays, submitted: list[str]) -> None:
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
        with store.tx() as conn:
            row = get(store, p.name)
            entry = {"array": job, "script": str(path), "points": [x.name for x in chunk]}
            jobs = [*json.loads(row["jobs_json"]), entry]
            conn.execute(
                "UPDATE sweeps SET jobs_json = ? WHERE name = ?", (json.dumps(jobs), p.name)
            )
        for i, (x, no) in enumerate(zip(chunk, nos, strict=True)):
            done = launch_mod.submit_attempt(
                store, x.spec, _ArrayTask(arrays, job, i), new_run=False
            )
            if done.attempt_no != no:
                raise OlmoctlError(f"{x.name}: attempt {done.attempt_no} is not the expected {no}")
        arrays.release(job)
        after = job


# -- progress --------------------------------------------------------------------------------
@dataclass
class Progress:
    sweep: str
    submitted: list[tuple[str, str | None]]
    waiting: int
    in_flight: int
    ended: int

    @property
    def done(self) -> bool:
        return self.waiting == 0 and self.in_flight == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.sweep,
            "submitted": [{"run": n, "job_id": j} for n, j in self.submitted],
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "ended": self.ended,
            "done": self.done,
        }


def _in_flight(state: str) -> bool:
    return state in LIVE_STATES or state == "SUBMITTING"


def advance(
    store: Store,
    sweep: str,
    *,
    refresh_first: bool = True,
    backend: Backend | None = None,
    refresh: Callable[..., Any] | None = None,
) -> Progress:
    """Bring the sweep's points up to date (one scheduler query) and submit waiting points
    while fewer than max_parallel are in flight. Safe to call from several processes: the
    points to submit are claimed in one transaction."""
    row = get(store, sweep)
    names = point_names(row)
    if refresh_first:
        if refresh is None:
            from olmoctl.core.status import refresh
        refresh(store, run_names=names)
    with store.tx() as conn:
        states = {
            r["name"]: r["state"]
            for r in conn.execute("SELECT name, state FROM runs WHERE sweep = ?", (sweep,))
        }
        in_flight = sum(_in_flight(s) for s in states.values())
        take = [n for n in names if states.get(n) == WAITING][
            : max(0, row["max_parallel"] - in_flight)
        ]
        for n in take:
            store.set_run_state(conn, n, "SUBMITTING")
    submitted: list[tuple[str, str | None]] = []
    for i, n in enumerate(take):
        spec = launch_mod.spec_of(store.get_run(n))
        try:
            done = launch_mod.submit_attempt(store, spec, backend, new_run=False)
        except BaseException:
            with store.tx() as conn:  # back in line for the next try
                for m in take[i:]:
                    store.set_run_state(conn, m, WAITING)
            raise
        submitted.append((n, done.job_id))
    states = {r["name"]: r["state"] for r in store.runs(sweep=sweep)}
    waiting = sum(s == WAITING for s in states.values())
    flying = sum(_in_flight(s) for s in states.values())
    return Progress(sweep, submitted, waiting, flying, len(states) - waiting - flying)


def cancel(store: Store, sweep: str, *, refresh: Callable[..., Any] | None = None) -> dict:
    """Cancel every point: waiting ones are never submitted, live ones are scancelled
    (queued before running, so an array's throttle cannot start another meanwhile)."""
    from olmoctl.core import control

    row = get(store, sweep)
    names = point_names(row)
    with store.tx() as conn:
        waiting = [
            r["name"]
            for r in conn.execute(
                "SELECT name FROM runs WHERE sweep = ? AND state = ?", (sweep, WAITING)
            )
        ]
        for n in waiting:
            store.set_run_state(conn, n, "CANCELLED")
    if refresh is None:
        from olmoctl.core.status import refresh
    refresh(store, run_names=names)
    live = []
    for n in names:
        last = store.last_attempt(n)
        if last is not None and last["state"] in LIVE_STATES and last["job_id"]:
            live.append((last["state"] != "PENDING", n))
    cancelled, errors = [], []
    for _, n in sorted(live):
        try:
            cancelled.append({"run": n, "job_id": control.cancel(n, store)})
        except OlmoctlError as e:
            errors.append(f"{n}: {e}")
    return {"sweep": sweep, "cancelled": cancelled, "never_submitted": waiting, "errors": errors}


# -- the status table ------------------------------------------------------------------------
def table(store: Store, sweep: str) -> list[dict[str, Any]]:
    """One row per point: parameters, state, step, last and best loss; best loss first."""
    from olmoctl.core import events as ev

    row = get(store, sweep)
    runs = {r["name"]: r for r in store.runs(sweep=sweep)}
    out = []
    for p in json.loads(row["points_json"]):
        run = runs.get(p["name"])
        if run is None:  # deleted by hand
            continue
        summary = json.loads(run["summary_json"] or "{}")
        losses = [loss for _, loss in ev.summarize(ev.read_events(run["run_dir"], None)).losses]
        last = store.last_attempt(p["name"])
        out.append(
            {
                "index": p["index"],
                "name": p["name"],
                "params": p["params"],
                "state": run["state"],
                "job_id": last["job_id"] if last else None,
                "step": summary.get("step"),
                "total_steps": run["total_steps"],
                "loss": summary.get("loss", losses[-1] if losses else None),
                "best_loss": min(losses) if losses else None,
            }
        )
    out.sort(key=lambda r: (r["best_loss"] is None, r["best_loss"] or 0.0, r["index"]))
    return out


def dry_run(p: Plan) -> list[dict[str, Any]]:
    """One script per distinct shape (the first point's); array mode adds the array."""
    out = []
    for key, idx in p.shapes().items():
        x = p.points[idx[0]]
        out.append({"shape": list(key), "points": idx, "script": render(x.spec)})
    if p.mode == "array":
        spec0 = p.points[0].spec
        size = spec0.cluster.max_array_size
        for k, chunk in enumerate(chunks(p.points, size)):
            after = "<previous array>" if k else None
            text = render_array(
                p.name,
                chunk,
                [1] * len(chunk),
                max_parallel=p.max_parallel,
                out_dir=str(sweep_dir(spec0, p.name)),
                after=after,
            )
            out.append({"array": k, "points": [x.index for x in chunk], "script": text})
    return out
