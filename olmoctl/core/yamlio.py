"""YAML with errors that name the file and line (pydantic errors: schemas/errors.py).

Two separate concerns, one loader:
  - size, nesting and alias expansion are bounded by schemas/bounded.py (BoundedLoader,
    load_yaml, read_text), shared with the job side;
  - a key given twice is refused (here: plain YAML keeps the last one, silently).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from olmoctl.errors import UsageError, shown, shown_plain
from olmoctl.schemas.bounded import FILE, VALUE, BoundedLoader, Limits, load_yaml, read_text


# ------------------------------------------------------------------ duplicate keys
class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping: plain YAML keeps the last one, silently."""

    fatal = True  # not "this is not YAML": an -o value is refused, not kept as text


class _Loader(BoundedLoader):
    """BoundedLoader, refusing duplicate keys."""


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = first_line.get(key)
        except TypeError:  # an unhashable key: construct_mapping names that error
            continue
        if seen is not None:
            raise DuplicateKeyError(
                None,
                None,
                f"duplicate key {shown(key, 60)} (first on line {seen})",
                key_node.start_mark,
            )
        first_line[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


# ------------------------------------------------------------------ loading
def loads(text: str, where: str, limits: Limits = VALUE) -> Any:
    """YAML text (an -o value) as data: bounded, duplicate keys refused (a UsageError);
    bounded.NotYAML when it is simply not YAML."""
    return load_yaml(text, where, limits, loader=_Loader)


def load_yaml_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    text = read_text(path, what, FILE)
    data = load_yaml(text, shown_plain(path), FILE, loader=_Loader)
    if not isinstance(data, dict):
        raise UsageError(
            f"{shown_plain(path)}: expected a mapping of keys at the top, got {type(data).__name__}"
        )
    return data
