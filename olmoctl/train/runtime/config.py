"""What the job runs: a RunSpec (RUN_DIR/spec.json, written by the launcher) or, for ad-hoc
use, a recipe (YAML or JSON) plus --run-dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olmoctl.errors import UsageError, shown_plain
from olmoctl.schemas.bounded import (
    FILE,
    RUN_FILE,
    UniqueKeyLoader,
    load_json,
    load_yaml,
    read_text,
)
from olmoctl.schemas.cluster import ClusterProfile
from olmoctl.schemas.errors import validate
from olmoctl.schemas.recipe import Recipe
from olmoctl.schemas.run import RunSpec


@dataclass(frozen=True)
class JobConfig:
    name: str
    recipe: Recipe
    run_dir: Path
    cluster: ClusterProfile | None = None
    spec: RunSpec | None = None


def read_mapping(p: Path, expected: str = "a mapping at the top") -> dict[str, Any]:
    """A spec.json (as the launcher wrote it) or a recipe file (YAML, JSON), parsed within
    bounds; its top must be a mapping (else: EXPECTED, got TYPE)."""
    if p.suffix == ".json":
        data = load_json(read_text(p, "run spec", RUN_FILE), shown_plain(p), RUN_FILE)
    else:
        text = read_text(p, "recipe file", FILE)
        data = load_yaml(text, shown_plain(p), FILE, loader=UniqueKeyLoader)
    if not isinstance(data, dict):
        raise UsageError(f"{shown_plain(p)}: expected {expected}, got {type(data).__name__}")
    return data


def load_run_spec(p: Path) -> RunSpec:
    """A run's spec.json, validated (the job's entry point and `render --from-spec`)."""
    return validate(RunSpec, read_mapping(p, "a run spec (a JSON object)"), str(p))


def load_job_config(path: str | os.PathLike[str], run_dir: str | None = None) -> JobConfig:
    p = Path(path)
    data = read_mapping(p)
    if "recipe" in data and "cluster" in data:
        spec: RunSpec = validate(RunSpec, data, str(p))
        where = Path(run_dir) if run_dir else Path(os.path.expanduser(spec.run_dir))
        return JobConfig(spec.name, spec.recipe, where.absolute(), spec.cluster, spec)
    recipe: Recipe = validate(Recipe, data, str(p))
    run_dir = run_dir or os.environ.get("OLMOCTL_RUN_DIR")
    if not run_dir:
        raise UsageError(
            f"{shown_plain(p)} is a recipe: give --run-dir DIR for its checkpoints and events"
        )
    return JobConfig(recipe.name, recipe, Path(run_dir).absolute())
