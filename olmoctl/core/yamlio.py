"""YAML loading with errors that name the file and line (pydantic errors: schemas/errors.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from olmoctl.errors import UsageError


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
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
