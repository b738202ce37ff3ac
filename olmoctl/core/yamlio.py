"""YAML loading with errors that name the file and line (pydantic errors: schemas/errors.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from olmoctl.errors import UsageError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping: plain YAML keeps the last one, silently."""


class _Loader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing duplicate keys."""


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
                None, None, f"duplicate key {key!r} (first on line {seen})", key_node.start_mark
            )
        first_line[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def loads(text: str) -> Any:
    """yaml.safe_load, except that a key given twice is an error (DuplicateKeyError)."""
    return yaml.load(text, Loader=_Loader)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = loads(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: expected a mapping of keys at the top, got {type(data).__name__}"
        )
    return data
