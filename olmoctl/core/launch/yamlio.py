"""YAML with errors that name the file and line (pydantic errors: schemas/errors.py).

Size, nesting and alias expansion are bounded, and a key given twice is refused (plain YAML
keeps the last one, silently), by schemas/bounded.py's UniqueKeyLoader, which the job side
(train/runtime/config.py) reads its recipe with too. Merge keys (`<<: *base`) are accepted:
a key after a merge overrides the merged one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from olmoctl.errors import UsageError, shown_plain
from olmoctl.schemas.bounded import FILE, VALUE, Limits, UniqueKeyLoader, load_yaml, read_text


# ------------------------------------------------------------------ loading
def loads(text: str, where: str, limits: Limits = VALUE) -> Any:
    """YAML text (an -o value) as data: bounded, duplicate keys refused (a UsageError);
    bounded.NotYAML when it is simply not YAML."""
    return load_yaml(text, where, limits, loader=UniqueKeyLoader)


def load_yaml_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    text = read_text(path, what, FILE)
    data = load_yaml(text, shown_plain(path), FILE, loader=UniqueKeyLoader)
    if not isinstance(data, dict):
        raise UsageError(
            f"{shown_plain(path)}: expected a mapping of keys at the top, got {type(data).__name__}"
        )
    return data
