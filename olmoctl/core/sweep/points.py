"""Planning a sweep: every point resolved (validated) and named, the sweep's name, and whether
it goes as job arrays or as separate jobs (which needs each point's shape)."""

from __future__ import annotations

from dataclasses import dataclass

from olmoctl.backends.registry import backend_for
from olmoctl.core.launch import catalog
from olmoctl.core.launch import checks as launch_checks
from olmoctl.core.launch.names import Taken
from olmoctl.core.launch.render import render
from olmoctl.core.launch.specs import SpecConfig, overrides_where
from olmoctl.core.sweep.rows import get
from olmoctl.core.sweep.spec import Definition, expand, point_overrides
from olmoctl.errors import UsageError, shown, shown_plain
from olmoctl.schemas import RunSpec
from olmoctl.schemas.shellsafe import inline
from olmoctl.store import Store

_SHAPE_SKIP = ("--job-name=", "--output=")


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
    """What the scheduler sees of a point: its #SBATCH lines, less its name and output file
    (a backend without batch scripts: its kind, nodes and time)."""
    if not backend_for(spec).batch_script:
        return (spec.cluster.scheduler, f"nodes={spec.nodes}", spec.time)
    return tuple(
        line
        for line in render(spec).splitlines()
        if line.startswith("#SBATCH ") and not line[8:].startswith(_SHAPE_SKIP)
    )


def _names_free(store: Store, base: str, count: int, runs_root: str) -> bool:
    if get(store, base, missing_ok=True) is not None:
        return False
    taken = Taken(store, runs_root)
    return not any(f"{base}-{i}" in taken for i in range(count))


def plan(store: Store, d: Definition, *, force: bool = False) -> Plan:
    """Expand and resolve every point; the first bad one rejects the whole sweep (a point
    that would not fit in GPU memory or asks for more time than its node count may have
    too, unless `force`: core/launch/checks.py)."""
    params = expand(d)
    config = SpecConfig.from_catalog(
        d.recipe, d.cluster, nodes=d.nodes, time=d.time, overrides=d.overrides
    )
    first = config.build()
    runs_root = first.cluster.runs_root
    if d.name is not None:
        name = d.name
        if not _names_free(store, name, len(params), runs_root):
            raise UsageError(
                f"sweep {shown(name)} (or a run {shown_plain(name, 60)}-N) already exists; "
                "pick another --name"
            )
    else:
        base = f"{catalog.find('recipes', d.recipe).name}-sweep"
        candidates = [base] + [f"{base}{i}" for i in range(2, 1000)]
        free = [n for n in candidates[:50] if _names_free(store, n, len(params), runs_root)]
        if not free:
            raise UsageError(f"no free sweep name for {shown(base)}; pass --name")
        name = free[0]
    points = []
    for i, p in enumerate(params):
        overrides = list(d.overrides) + point_overrides(p)
        try:
            spec = config.replace(name=f"{name}-{i}", overrides=overrides).build()
            launch_checks.check(spec, force=force)
        except UsageError as e:
            msg = str(e).removeprefix(overrides_where(overrides) + ": ")
            params = inline(", ".join(f"{k}={v}" for k, v in p.items()))
            raise UsageError(f"sweep point {i} ({params}) is invalid: {msg}") from None
        points.append(Point(i, p, spec))
    max_parallel = d.max_parallel or len(points)
    one_shape = len({shape(pt.spec) for pt in points}) == 1
    arrays = backend_for(first).supports_arrays
    fits = arrays and d.nodes == 1 and one_shape
    if d.array and not fits:
        why = (
            "its points span several nodes"
            if d.nodes > 1
            else "its points differ in their #SBATCH lines"
            if arrays
            else f"cluster {shown(first.cluster.name)} cannot run job arrays"
        )
        raise UsageError(f"--array: this sweep cannot be one job array: {why}")
    mode = "array" if fits and d.array is not False else "jobs"
    note = ""
    if mode == "jobs" and max_parallel < len(points):
        note = f"at most {max_parallel} in flight; `olmoctl sweep --continue {name}` submits more"
    return Plan(name, d, points, mode, max_parallel, note)
