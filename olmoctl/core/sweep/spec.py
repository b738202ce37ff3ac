"""A sweep's definition: the flags and/or a sweep file, parsed and checked, and its points'
parameters (grid product, random draws). Pure: no store, no cluster."""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from olmoctl.core.launch.yamlio import load_yaml_mapping
from olmoctl.errors import UsageError, shown, shown_plain, user_path
from olmoctl.schemas.bounded import check_value_size
from olmoctl.schemas.bounds import INT64_MAX, Int
from olmoctl.schemas.errors import one_line
from olmoctl.schemas.shellsafe import check_name

MAX_POINTS = 10_000
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")


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
    check_value_size(item, f"{flag} {shown(key, 60)}")
    if not sep or not key or not value.strip():
        raise UsageError(f"{flag} {shown(item)}: expected key.path=..., e.g. {flag} {example}")
    return key, value.strip()


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, text = _key_value(item, "--grid", "optim.lr=1e-4,3e-4")
        values = split_values(text)
        if any(v == "" for v in values):
            raise UsageError(f"--grid {shown(item)}: an empty value (two commas in a row?)")
        if key in grid:
            k = shown(key, 60)
            raise UsageError(f"--grid {k} given twice; list all its values once: {k}=a,b,c")
        grid[key] = values
    return grid


def parse_sample(key: str, spec: str) -> Sample:
    kind, _, rest = spec.partition(":")
    where = f"--sample {shown_plain(f'{key}={spec}', 100)}"
    if kind not in DISTRIBUTIONS:
        raise UsageError(
            f"{where}: unknown distribution {shown(kind, 40)}; use loguniform:A:B, uniform:A:B, "
            "int:A:B or choice:X,Y"
        )
    if kind == "choice":
        choices = tuple(split_values(rest))
        if not rest or any(c == "" for c in choices):
            raise UsageError(f"{where}: choice needs values, e.g. choice:500,1000")
        return Sample(key, kind, choices=choices)
    parts = rest.split(":")
    try:
        if len(parts) != 2 or not rest.isascii():  # int()/float() take any script's digits
            raise ValueError
        low, high = (int(p) for p in parts) if kind == "int" else (float(p) for p in parts)
    except ValueError:
        num = "integers" if kind == "int" else "numbers"
        raise UsageError(f"{where}: expected {kind}:LOW:HIGH with {num} (digits 0-9)") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UsageError(f"{where}: LOW and HIGH must be finite numbers")
    if abs(low) > INT64_MAX or abs(high) > INT64_MAX:
        raise UsageError(f"{where}: LOW and HIGH must be within +-{INT64_MAX}")
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
            raise UsageError(f"--sample {shown(key, 60)} given twice")
        out[key] = parse_sample(key, spec)
    return out


class SweepFile(BaseModel):
    """A sweep file: the same content as the flags (`grid`/`sample` map keys to values)."""

    model_config = ConfigDict(extra="forbid")
    recipe: str | None = None
    cluster: str | None = None
    name: str | None = None
    nodes: Int | None = Field(default=None, gt=0, le=1_000_000)
    time: str | None = None
    max_parallel: Int | None = Field(default=None, gt=0, le=MAX_POINTS)
    array: bool | None = None
    overrides: dict[str, Any] | list[str] = Field(default_factory=list)
    grid: dict[str, list[Any] | str] = Field(default_factory=dict)
    random: Int | None = Field(default=None, gt=0, le=MAX_POINTS)
    seed: Int | None = Field(default=None, ge=0)
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
    p = user_path(path, "sweep file")
    try:
        return SweepFile.model_validate(load_yaml_mapping(p, "sweep file"))
    except ValidationError as e:
        raise UsageError(one_line(e, SweepFile, shown_plain(p))) from None


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
            raise UsageError(
                f"{shown_plain(file)}: grid {shown(key, 60)}: give at least one non-empty value"
            )
        file_grid[key] = vals
    file_samples = {k: parse_sample(k, s) for k, s in f.sample.items()}
    d = Definition(
        recipe=recipe,
        cluster=cluster,
        nodes=nodes if nodes is not None else (f.nodes or 1),
        name=name if name is not None else f.name,  # "" is refused below, not dropped
        time=time_limit if time_limit is not None else f.time,
        max_parallel=max_parallel if max_parallel is not None else f.max_parallel,
        array=array if array is not None else f.array,
        overrides=file_overrides + list(overrides or []),
        grid={**file_grid, **parse_grid(list(grid or []))},
        random=random_count if random_count is not None else f.random,
        seed=seed if seed is not None else (f.seed or 0),
        samples={**file_samples, **parse_samples(list(samples or []))},
    )
    if d.name is not None:
        try:  # the array's job name and comment, and the points' run names NAME-i
            check_name(d.name)
        except ValueError as e:
            raise UsageError(f"sweep --name: {e}") from None
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
        raise UsageError(f"{shown(both[0], 60)} is both a grid key and a sampled key; pick one")
    if not d.grid and d.random is None:
        raise UsageError(
            "nothing to sweep: give --grid key=a,b, --random N --sample ..., or a file"
        )
    return d


def count(d: Definition) -> int:
    """How many points `d` has, from the sizes alone (nothing is built)."""
    return math.prod(len(v) for v in d.grid.values()) * (d.random or 1)


def expand(d: Definition) -> list[dict[str, str]]:
    """The points' parameters, in order: the grid's cartesian product (last key fastest),
    crossed with `random` draws when sampling (same seed, same points)."""
    total = count(d)
    if total > MAX_POINTS:
        sizes = " x ".join(str(len(v)) for v in d.grid.values())
        random_part = f" x {d.random} random draws" if d.random is not None else ""
        how = f" ({sizes}{random_part})" if d.grid and (len(d.grid) > 1 or d.random) else ""
        raise UsageError(f"the sweep has {total:,} points{how}; the limit is {MAX_POINTS:,}")
    keys = list(d.grid)
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*d.grid.values())]
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
