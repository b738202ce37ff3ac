"""Pydantic errors as one line naming the key and the problem, and "did you mean".

The one formatter for both sides: the launcher (profiles, recipes, overrides, run specs,
sweep files) and the job (spec.json, a recipe file).
"""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from olmoctl.errors import UsageError
from olmoctl.schemas.base import SAFE_TOKEN

M = TypeVar("M", bound=BaseModel)


def suggest(word: str, candidates: list[str], n: int = 3) -> str:
    """`; did you mean 'x', 'y'?` for the closest candidates, or ""."""
    close = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if not close:
        # Fall back to keys in the same section, so the user sees what is valid there.
        head = word.rsplit(".", 1)[0] + "." if "." in word else ""
        close = [c for c in candidates if head and c.startswith(head)][:n]
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def model_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of a schema, for "did you mean" and for listing valid keys."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        sub = submodel(field.annotation)
        if sub is not None:
            out.extend(model_paths(sub, f"{path}."))
        else:
            out.append(path)
    return out


def submodel(annotation: Any) -> type[BaseModel] | None:
    """The schema a field holds (itself, or inside Optional/Union), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def one_line(
    err: ValidationError, model: type[BaseModel], where: str | None = None, prefix: str = ""
) -> str:
    """`WHERE: ` (when given) and the first error, naming the key; the count if more.
    `prefix` is where the model sits in the user's key space (`cluster.` for a profile)."""
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
        pattern = (first.get("ctx") or {}).get("pattern")
        if pattern in (None, SAFE_TOKEN):
            why = "only letters, digits and _.+- may appear (the value lands in the batch script)"
        else:
            why = f"it must match {pattern}"
        msg = f"{loc}: {value!r} is not allowed here: {why}"
    else:
        text = first["msg"].removeprefix("Value error, ")
        msg = f"{loc}: {text}" if loc and not text.startswith(loc.split(".")[0]) else text
        if kind not in ("value_error", "assertion_error") and "input" in first:
            msg += f" (got {first['input']!r})"
    more = len(err.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {msg}{suffix}" if where else f"{msg}{suffix}"


def validate(model: type[M], data: Any, where: str | None = None, prefix: str = "") -> M:
    """`model` from `data`, or a UsageError of one line (see one_line)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UsageError(one_line(e, model, where, prefix)) from None
