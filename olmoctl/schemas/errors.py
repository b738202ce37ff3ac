"""Pydantic errors as one line naming the key and the problem, and "did you mean".

The one formatter for both sides: the launcher (profiles, recipes, overrides, run specs,
sweep files) and the job (spec.json, a recipe file).
"""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from olmoctl.errors import UsageError, flat, shown, shown_plain
from olmoctl.schemas.base import SAFE_TOKEN
from olmoctl.schemas.cluster import TIME_RE
from olmoctl.schemas.run import RUN_NAME

M = TypeVar("M", bound=BaseModel)


def suggest(word: str, candidates: list[str], n: int = 3) -> str:
    """`; did you mean 'x', 'y'?` for the closest candidates, or ""."""
    close = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if not close:
        # Fall back to keys in the same section, so the user sees what is valid there.
        head = word.rsplit(".", 1)[0] + "." if "." in word else ""
        close = [c for c in candidates if head and c.startswith(head)][:n]
    return f"; did you mean {', '.join(shown(c, 60) for c in close)}?" if close else ""


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


# What each schema pattern asks for, in words (a regex is no help to most users). A pattern
# missing here still names the key, and shows the regex.
_PATTERN_HELP = {
    SAFE_TOKEN: "only letters, digits and _.+- may appear (the value lands in the batch script)",
    TIME_RE: "use a Slurm time, HH:MM:SS or D-HH:MM:SS",
    RUN_NAME: "use 1-64 letters, digits and _.- (starting with a letter or digit)",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$": "use a host name: letters, digits and _.- "
    "(starting with a letter or digit)",
    r"^[a-z_][a-z0-9_.-]*$": "use a user name: lower-case letters, digits and _.- "
    "(starting with a letter or _)",
    r"^[A-Za-z0-9_:,x]+$": "use a Slurm --cpu-bind value: letters, digits and _:,",
    r"^/[A-Za-z0-9_./+@-]*$": "use an absolute path of letters, digits and _./+@-",
}


def pattern_help(pattern: str | None) -> str | None:
    return _PATTERN_HELP.get(pattern) if pattern else None


def one_line(
    err: ValidationError, model: type[BaseModel], where: str | None = None, prefix: str = ""
) -> str:
    """`WHERE: ` (when given) and the first error, naming the key; the count if more.
    `prefix` is where the model sits in the user's key space (`cluster.` for a profile)."""
    first = err.errors()[0]
    key = prefix + ".".join(str(p) for p in first["loc"])
    loc = shown_plain(key, 100)  # the key as a user wrote it: may hold anything
    kind = first["type"]
    if kind == "extra_forbidden":
        valid = [prefix + p for p in model_paths(model)]
        msg = f"unknown key {shown(key)}{suggest(key[:200], valid)}"
    elif kind == "missing":
        msg = f"missing required key {shown(key)}"
    elif kind == "string_pattern_mismatch":
        pattern = (first.get("ctx") or {}).get("pattern")
        why = pattern_help(pattern) or f"it must match the pattern {pattern}"
        msg = f"{loc}: {shown(first.get('input'))} is not allowed here: {why}"
    else:
        text = flat(first["msg"].removeprefix("Value error, "), 300)
        msg = f"{loc}: {text}" if loc and not text.startswith(loc.split(".")[0]) else text
        if kind not in ("value_error", "assertion_error") and "input" in first:
            msg += f" (got {shown(first['input'])})"
    more = len(err.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {msg}{suffix}" if where else f"{msg}{suffix}"


def validate(model: type[M], data: Any, where: str | None = None, prefix: str = "") -> M:
    """`model` from `data`, or a UsageError of one line (see one_line)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UsageError(one_line(e, model, where, prefix)) from None
