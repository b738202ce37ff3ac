"""YAML loading with errors that name the file and line, and pydantic errors as one line."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

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


def model_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of a schema, for "did you mean" and for listing valid keys."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        sub = _submodel(field.annotation)
        if sub is not None:
            out.extend(model_paths(sub, f"{path}."))
        else:
            out.append(path)
    return out


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def suggest(word: str, candidates: list[str], n: int = 3) -> str:
    close = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if not close:
        # Fall back to keys in the same section, so the user sees what is valid there.
        head = word.rsplit(".", 1)[0] + "." if "." in word else ""
        close = [c for c in candidates if head and c.startswith(head)][:n]
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def explain(err: ValidationError, model: type[BaseModel], where: str, prefix: str = "") -> str:
    """One line naming the key and the problem (the first error; the count if more)."""
    first = err.errors()[0]
    loc = prefix + ".".join(str(p) for p in first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        valid = [prefix + p for p in model_paths(model)]
        msg = f"unknown key {loc!r}{suggest(loc, valid)}"
    elif kind == "missing":
        msg = f"missing required key {loc!r}"
    elif kind == "string_pattern_mismatch":
        value = first.get("input")
        msg = (
            f"{loc}: {value!r} is not allowed here: only letters, digits and _.+- may appear "
            "(the value lands in the batch script)"
        )
    else:
        text = first["msg"].removeprefix("Value error, ")
        msg = f"{loc}: {text}" if loc and not text.startswith(loc.split(".")[0]) else text
        if kind not in ("value_error", "assertion_error") and "input" in first:
            msg += f" (got {first['input']!r})"
    more = len(err.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {msg}{suffix}"
