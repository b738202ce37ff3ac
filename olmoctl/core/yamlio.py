"""YAML files with errors that name the file and line (pydantic errors: schemas/errors.py).

Size, nesting and alias expansion are bounded by schemas/bounded.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from olmoctl.errors import UsageError, shown_plain
from olmoctl.schemas.bounded import FILE, load_yaml, read_text


def load_yaml_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    text = read_text(path, what, FILE)
    data = load_yaml(text, shown_plain(path), FILE)
    if not isinstance(data, dict):
        raise UsageError(
            f"{shown_plain(path)}: expected a mapping of keys at the top, got {type(data).__name__}"
        )
    return data
