"""olmoctl's exit statuses: one table, so scripts (and `watch`) can tell outcomes apart.

README.md lists the same table; `olmoctl --help` prints it (EPILOG).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

OK = 0  # done; a --wait run COMPLETED
FAILED = 1  # a command failed, or a --wait run failed (its code, out of memory, unknown)
BAD_INPUT = 2  # bad input: refused before anything changed
CANCELLED = 3  # a --wait run was cancelled
STOPPED = 4  # a --wait run was stopped by the infrastructure: `olmoctl resume RUN` continues it
INTERRUPTED = 130  # Ctrl-C

TABLE = (
    (OK, "success (a --wait run COMPLETED)"),
    (FAILED, "failure: a command failed, or a --wait run failed (code error, out of memory)"),
    (BAD_INPUT, "bad input, refused in one line before anything changed"),
    (CANCELLED, "a --wait run was cancelled"),
    (STOPPED, "a --wait run was stopped by time limit, preemption, node failure or a hang"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)
EPILOG = "Exit status: " + "; ".join(f"{code} {what}" for code, what in TABLE) + "."

# classify's classes (core/track/classify.py) that `olmoctl resume` continues, and Slurm end
# states meaning the same where an attempt was never classified.
_STOPPED_CLASSES = frozenset(
    {"TIMEOUT", "PREEMPTED", "NODE_FAIL", "RANK_KILLED", "COLLECTIVE", "HANG"}
)
_STOPPED_STATES = frozenset({"TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"})


class Ended(Protocol):
    """What the code of a run's end is read from: its last attempt (store.Attempt)."""

    @property
    def state(self) -> str: ...
    @property
    def klass(self) -> str | None: ...


def of_run_end(last: Ended | None) -> int:
    """The exit status of `--wait` for a run whose last attempt is `last`."""
    if last is None:
        return FAILED
    outcome = last.klass or str(last.state)
    if outcome == "COMPLETED":
        return OK
    if outcome == "CANCELLED":
        return CANCELLED
    if outcome in _STOPPED_CLASSES or (last.klass is None and outcome in _STOPPED_STATES):
        return STOPPED
    return FAILED


# Several runs' ends as one status (watch --until-done), worst first: a run that needs a human
# (1) before one the infrastructure stopped that `resume` would continue (4), before one
# somebody cancelled on purpose (3); 0 only when every run COMPLETED.
_WORST_FIRST = (FAILED, STOPPED, CANCELLED, OK)


def worst(codes: Iterable[int]) -> int:
    """The status of several runs' ends (each from of_run_end): the worst; OK for none."""
    return min(codes, key=_WORST_FIRST.index, default=OK)
