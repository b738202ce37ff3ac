"""Find, load and validate cluster profiles and recipes (the run spec: core/specs.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from olmoctl import paths
from olmoctl.core.yamlio import load_yaml_mapping
from olmoctl.errors import UsageError
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.errors import suggest, validate

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    source: str  # "shipped", "user" or "path"


def _is_path(ref: str) -> bool:
    return "/" in ref or ref.endswith(_SUFFIXES)


def available(kind: str) -> dict[str, Entry]:
    """Name -> entry for `clusters` or `recipes`; the user's own shadow shipped ones."""
    found: dict[str, Entry] = {}
    for source, folder in (("shipped", paths.data_dir(kind)), ("user", paths.user_dir(kind))):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.suffix in _SUFFIXES and p.is_file():
                found[p.stem] = Entry(p.stem, p, source)
    return found


def find(kind: str, ref: str) -> Entry:
    if _is_path(ref):
        p = Path(ref).expanduser()
        if not p.is_file():
            raise UsageError(f"{kind[:-1]} file {ref!r} does not exist")
        return Entry(p.stem, p, "path")
    entries = available(kind)
    if ref not in entries:
        names = sorted(entries)
        hint = suggest(ref, names) or f"; valid: {', '.join(names)}"
        raise UsageError(f"unknown {kind[:-1]} {ref!r}{hint}")
    return entries[ref]


def load_recipe(ref: str) -> Recipe:
    entry = find("recipes", ref)
    return validate(Recipe, load_yaml_mapping(entry.path), str(entry.path))


def load_cluster(ref: str) -> ClusterProfile:
    entry = find("clusters", ref)
    return validate(ClusterProfile, load_yaml_mapping(entry.path), str(entry.path))


def default_name(recipe: str, cluster: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{recipe}-{cluster}")
