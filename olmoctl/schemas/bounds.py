"""Bounds every user-facing schema shares, so no value is accepted that fails later.

Floats are finite (Schema's config refuses inf/nan, "1e309" included); ints fit int64 (what
SQLite stores and torch takes) and are never a YAML boolean (`n_layers: true` is not 1);
strings are length-bounded by their kind (schemas/shellsafe.py; STR_MAX, like its MAX_TEXT).
Fields add their own ranges.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from olmoctl.errors import shown

INT64_MAX = 2**63 - 1
STR_MAX = 4096  # any string a profile or recipe holds (PATH_MAX)
# Budgets and shapes far above any real run, far below overflow anywhere downstream.
STEPS_MAX = 10**12
TOKENS_MAX = 10**18
DIM_MAX = 2**24  # widths, vocabulary, sequence length, batch sizes
DAY_S = 86_400


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads True as 1 (and 1.0): a YAML `true` is a typo, not a count.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


# Every int and float field of the schemas uses these (tests walk the models to check).
Int = Annotated[int, BeforeValidator(_not_bool), Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Float = Annotated[float, BeforeValidator(_not_bool)]


# --- Slurm time strings -------------------------------------------------------------------
# Digits are ASCII [0-9] in every number read from text: Python's \d, int() and float() also
# take Arabic-Indic or full-width digits (U+0661 U+0662 is 12), which Slurm, bash and the job
# do not.

TIME_MAX_DAYS = 365
_TIME = re.compile(r"(?:([0-9]{1,3})-)?([0-9]{1,3}):([0-9]{2}):([0-9]{2})")


def time_problem(value: str) -> str | None:
    """Why `value` is not a Slurm time olmoctl accepts (HH:MM:SS or D-HH:MM:SS with minutes
    and seconds below 60, hours below 24 after a day count, at most a year), or None."""
    m = _TIME.fullmatch(value)
    if m is None:
        return "is not a Slurm time; use HH:MM:SS or D-HH:MM:SS (digits 0-9)"
    hours, minutes, seconds = (int(g) for g in m.groups()[1:])
    if minutes > 59 or seconds > 59:
        return "has minutes or seconds above 59"
    if m.group(1) is not None and hours > 23:
        return "has hours above 23 after a day count (D-HH:MM:SS)"
    if parse_time(value) > TIME_MAX_DAYS * DAY_S:
        return f"is above the {TIME_MAX_DAYS} days olmoctl accepts"
    if parse_time(value) == 0:
        return "is zero; give a time limit above 00:00:00"
    return None


def parse_time(value: str) -> int:
    """Slurm time string -> seconds (ValueError on anything time_problem would refuse the
    form of)."""
    m = _TIME.fullmatch(value)
    if m is None:
        raise ValueError(f"{shown(value)} is not a Slurm time; use HH:MM:SS or D-HH:MM:SS")
    days, h, mi, s = (int(g or 0) for g in m.groups())
    return ((days * 24 + h) * 60 + mi) * 60 + s


def _checked(problem_of: Callable[[str], str | None]) -> AfterValidator:
    """A pydantic check that raises `problem_of`'s answer, naming the value."""

    def check(value: str) -> str:
        problem = problem_of(value)
        if problem is not None:
            raise ValueError(f"{shown(value)} {problem}")
        return value

    return AfterValidator(check)


SlurmTime = Annotated[str, _checked(time_problem)]


# --- Slurm memory sizes (--mem) ----------------------------------------------------------

# Slurm reads a bare number as MB. A PiB per node is far above any machine, far below
# Slurm's own (64-bit MB) limit.
MEM_MAX_MB = 1 << 30
_MEM = re.compile(r"([0-9]{1,19})([KMGT]?)")
_MB_PER = {"K": 1 / 1024, "": 1, "M": 1, "G": 1 << 10, "T": 1 << 20}


def mem_problem(value: str) -> str | None:
    """Why `value` is not a Slurm --mem size olmoctl accepts ("0" = all of the node's), or
    None."""
    m = _MEM.fullmatch(value)
    if m is None:
        return (
            "is not allowed here: use a whole number (digits 0-9) with an optional K, M, G "
            "or T suffix, e.g. 64G"
        )
    if int(m.group(1)) * _MB_PER[m.group(2)] > MEM_MAX_MB:
        return f"is above the {MEM_MAX_MB >> 20}T per node olmoctl accepts"
    return None


SlurmMem = Annotated[str, _checked(mem_problem)]
