"""What the job runs: a RunSpec (RUN_DIR/spec.json, written by the launcher) or, for ad-hoc
use, a recipe (YAML or JSON) plus --run-dir."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from olmoctl.errors import UsageError
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


def load_job_config(path: str | os.PathLike[str], run_dir: str | None = None) -> JobConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UsageError(f"{p}: not found") from None
    except OSError as e:
        raise UsageError(f"{p}: cannot read: {e.strerror}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{p}:{e.lineno}: not valid JSON: {e.msg}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{p}: expected a mapping at the top, got {type(data).__name__}")
    if "recipe" in data and "cluster" in data:
        spec: RunSpec = validate(RunSpec, data, str(p))
        where = Path(run_dir) if run_dir else Path(os.path.expanduser(spec.run_dir))
        return JobConfig(spec.name, spec.recipe, where.absolute(), spec.cluster, spec)
    recipe: Recipe = validate(Recipe, data, str(p))
    run_dir = run_dir or os.environ.get("OLMOCTL_RUN_DIR")
    if not run_dir:
        raise UsageError(f"{p} is a recipe: give --run-dir DIR for its checkpoints and events")
    return JobConfig(recipe.name, recipe, Path(run_dir).absolute())
