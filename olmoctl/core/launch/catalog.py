"""Find, load and validate cluster profiles and recipes (the run spec: core/launch/specs.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from olmoctl import paths
from olmoctl.core.launch.yamlio import load_yaml_mapping
from olmoctl.errors import UsageError, shown, user_path
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.errors import suggest, validate

_SUFFIXES = paths.CATALOG_SUFFIXES


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    source: str  # "shipped", "user" or "path"


def _is_path(ref: str) -> bool:
    return "/" in ref or ref.endswith(_SUFFIXES)


def available(kind: str) -> dict[str, Entry]:
    """Name -> entry for `clusters` or `recipes`; the user's own shadow shipped ones."""
    return {n: Entry(n, path, source) for n, (path, source) in paths.catalog_files(kind).items()}


def find(kind: str, ref: str) -> Entry:
    if _is_path(ref):
        p = user_path(ref, f"{kind[:-1]} file")
        if p.is_dir():
            raise UsageError(f"{kind[:-1]} file {shown(ref)} is a directory; give a YAML file")
        if not p.is_file():
            raise UsageError(f"{kind[:-1]} file {shown(ref)} does not exist")
        return Entry(p.stem, p, "path")
    entries = available(kind)
    if ref not in entries:
        names = sorted(entries)
        hint = suggest(ref, names) or f"; valid: {listed(names)}"
        raise UsageError(f"unknown {kind[:-1]} {shown(ref)}{hint}")
    return entries[ref]


def listed(names: list[str], most: int = 12) -> str:
    """`a, b, c` (plain names bare, others as `shown`), at most `most` and how many more."""
    head = ", ".join(n if re.fullmatch(r"[\w.+-]{1,40}", n) else shown(n, 40) for n in names[:most])
    return head + (f" and {len(names) - most} more" if len(names) > most else "")


def load_recipe(ref: str) -> Recipe:
    entry = find("recipes", ref)
    return validate(Recipe, load_yaml_mapping(entry.path, "recipe file"), str(entry.path))


def load_cluster(ref: str) -> ClusterProfile:
    entry = find("clusters", ref)
    data = load_yaml_mapping(entry.path, "cluster file")
    return validate(ClusterProfile, data, str(entry.path))


def default_name(recipe: str, cluster: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{recipe}-{cluster}")
