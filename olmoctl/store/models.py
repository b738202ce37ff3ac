"""What the store returns: frozen rows with typed fields, and the states an attempt can be in.

JSON columns that every caller decodes (a run's summary, an attempt's evidence, a sweep's
definition, points and jobs) arrive decoded; a run's spec stays text, since only some
callers need the RunSpec (core.track.runs.spec_of validates it).

A row is read tolerantly: one damaged row (bad JSON, a wrong type written by hand or by a
broken tool) must not hide every other run. A Run says what is wrong in `damage`; its
spec is checked when used (spec_data raises DamagedRow, one line).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from olmoctl.jobid import JobId
from olmoctl.store.errors import DamagedRow


class AttemptState(StrEnum):
    """An attempt's state: Slurm's word for its job (sacct/squeue), or olmoctl's own
    (SUBMITTING, SUBMIT_FAILED). str-valued, so the stored text is the state itself; a word
    not listed here (a newer Slurm) still loads, as a state that is not live."""

    # olmoctl's own
    SUBMITTING = "SUBMITTING"  # recorded, submission under way (reserves the attempt)
    SUBMIT_FAILED = "SUBMIT_FAILED"  # olmoctl stopped before the job was submitted
    # alive: queued, running or on its way out
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    REQUEUED = "REQUEUED"
    CONFIGURING = "CONFIGURING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    RESIZING = "RESIZING"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    STOPPED = "STOPPED"
    UNKNOWN = "UNKNOWN"
    # ended
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    PREEMPTED = "PREEMPTED"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"

    @classmethod
    def _missing_(cls, value: object) -> AttemptState | None:
        # A state this olmoctl does not know: keep its text (a pseudo-member, not live).
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    @property
    def is_live(self) -> bool:
        """Queued, running, on its way out, or still being submitted."""
        return self in LIVE_STATES or self is AttemptState.SUBMITTING


# Slurm states in which a job is still alive (SUBMITTING is olmoctl's, never Slurm's).
LIVE_STATES: frozenset[AttemptState] = frozenset(
    {
        AttemptState.SUBMITTED,
        AttemptState.PENDING,
        AttemptState.RUNNING,
        AttemptState.REQUEUED,
        AttemptState.CONFIGURING,
        AttemptState.COMPLETING,
        AttemptState.SUSPENDED,
        AttemptState.RESIZING,
        AttemptState.REQUEUE_HOLD,
        AttemptState.REQUEUE_FED,
        AttemptState.SIGNALING,
        AttemptState.STAGE_OUT,
        AttemptState.STOPPED,
        AttemptState.UNKNOWN,
    }
)

# A run's state that olmoctl sets itself: a sweep point recorded, not yet submitted. Other
# run states are its last attempt's class (NODE_FAIL, CODE_ERROR...) or state.
WAITING = "WAITING"

# An attempt's columns as users see them (status RUN, the run record), in display order.
ATTEMPT_FIELDS = (
    "attempt_no",
    "job_id",
    "restart_index",
    "state",
    "klass",
    "node_list",
    "submitted_at",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "first_step",
    "last_step",
)


def _job_id(r: sqlite3.Row) -> JobId | None:
    """The job id with the identity recorded for it (olmoctl.jobid), which every backend call
    that gets the id then carries along."""
    if r["job_id"] is None:
        return None
    identity = r["job_identity"] if "job_identity" in r.keys() else None  # noqa: SIM118
    return JobId(str(r["job_id"]), identity)


def _json(text: Any, empty: Any, problems: list[str] | None = None, col: str = "") -> Any:
    """A JSON column, decoded; `empty` (and a note in `problems`) if it is not JSON of
    the expected kind."""
    if not text:
        return empty
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        value = None
    if isinstance(value, type(empty)):
        return value
    if problems is not None:
        problems.append(f"{col} is not a JSON {type(empty).__name__}")
    return empty


# Summary values that status does arithmetic or formatting on.
_SUMMARY_NUMBERS = (
    "step", "loss", "best_loss", "tokens_per_s", "mfu", "heartbeat_ts", "last_checkpoint"
)  # fmt: skip


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _col(r: sqlite3.Row, col: str, ok: Any, default: Any, problems: list[str]) -> Any:
    """Column COL if `ok(value)`, else `default` and a note."""
    value = r[col]
    if ok(value):
        return value
    problems.append(f"{col} is {type(value).__name__}")
    return default


@dataclass(frozen=True)
class Run:
    name: str
    recipe: str
    cluster: str
    nodes: int
    state: str
    run_dir: str
    spec_json: str  # the resolved RunSpec (core.track.runs.spec_of)
    total_steps: int
    sweep: str | None
    created_at: float
    updated_at: float
    summary: dict[str, Any]  # events folded in by status (step, loss, best_loss...)

    damage: str | None = None  # what is wrong with this row, if anything

    @classmethod
    def of(cls, r: sqlite3.Row) -> Run:
        bad: list[str] = []

        def text(col: str) -> str:
            return str(_col(r, col, lambda v: isinstance(v, str), "?", bad))

        def num(col: str) -> Any:
            return _col(r, col, _number, 0, bad)

        summary = _json(r["summary_json"], {}, bad, "summary_json")
        for k in _SUMMARY_NUMBERS:
            if summary.get(k) is not None and not _number(summary[k]):
                bad.append(f"summary {k} is not a number")
                summary = {**summary, k: None}
        return cls(
            name=str(r["name"]),
            recipe=text("recipe"),
            cluster=text("cluster"),
            nodes=num("nodes"),
            state=text("state"),
            run_dir=text("run_dir"),
            spec_json=text("spec_json"),
            total_steps=num("total_steps"),
            sweep=_col(r, "sweep", lambda v: v is None or isinstance(v, str), None, bad),
            created_at=num("created_at"),
            updated_at=num("updated_at"),
            summary=summary,
            damage="; ".join(bad) or None,
        )

    @property
    def spec_data(self) -> dict[str, Any]:
        """The spec as plain JSON data (cheaper than validating a RunSpec); DamagedRow
        (one line) if the stored text is not a JSON object."""
        problems: list[str] = []
        data: dict[str, Any] = _json(self.spec_json, {}, problems, "spec_json")
        if not problems and not isinstance(data.get("cluster"), dict):
            problems.append("spec_json has no cluster")
        if problems:
            raise DamagedRow(self.name, problems[0])
        return data


@dataclass(frozen=True)
class Attempt:
    """One incarnation of a run's job (a Slurm requeue keeps the job id: restart_index)."""

    id: int
    run_name: str
    attempt_no: int
    job_id: str | None
    cluster: str
    nodes: int
    node_list: str | None
    submitted_at: float | None
    started_at: float | None
    ended_at: float | None
    state: AttemptState
    exit_code: str | None
    reason: str | None
    first_step: int | None
    last_step: int | None
    script: str | None
    evidence: dict[str, Any]
    restart_index: int
    klass: str | None  # the classified ending (core.classify); None until it ended

    @classmethod
    def of(cls, r: sqlite3.Row) -> Attempt:
        return cls(
            id=r["id"],
            run_name=r["run_name"],
            attempt_no=r["attempt_no"],
            job_id=_job_id(r),
            cluster=r["cluster"],
            nodes=r["nodes"],
            node_list=r["node_list"],
            submitted_at=r["submitted_at"],
            started_at=r["started_at"],
            ended_at=r["ended_at"],
            state=AttemptState(str(r["state"])),
            exit_code=r["exit_code"],
            reason=r["reason"],
            first_step=r["first_step"],
            last_step=r["last_step"],
            script=r["script"],
            evidence=_json(r["evidence_json"], {}),
            restart_index=r["restart_index"],
            klass=r["klass"],
        )

    @property
    def is_live(self) -> bool:
        """Still alive: a live state, and not classified (a classified attempt has ended,
        whatever its last Slurm word, e.g. REQUEUED for an earlier incarnation)."""
        return self.klass is None and self.state.is_live

    def fields(self) -> dict[str, Any]:
        """ATTEMPT_FIELDS as a dict, in display order (status RUN, the run record)."""
        return {k: getattr(self, k) for k in ATTEMPT_FIELDS}


@dataclass(frozen=True)
class Checkpoint:
    run_name: str
    step: int
    path: str
    complete: bool
    bytes: int | None
    saved_at: float | None
    deleted_at: float | None = None  # when a refresh found its folder gone (retention)

    @classmethod
    def of(cls, r: sqlite3.Row) -> Checkpoint:
        return cls(
            r["run_name"],
            r["step"],
            r["path"],
            bool(r["complete"]),
            r["bytes"],
            r["saved_at"],
            r["deleted_at"],
        )


@dataclass(frozen=True)
class NodeHealth:
    cluster: str
    node: str
    failures: int
    last_reason: str | None
    last_at: float | None
    # The burn-in check that last failed the node (None when a job failure blamed it).
    last_check: str | None = None
    measured: float | None = None
    expected: float | None = None
    unit: str | None = None

    @classmethod
    def of(cls, r: sqlite3.Row) -> NodeHealth:
        keys = r.keys()
        extra = [r[k] if k in keys else None for k in ("last_check", "measured", "expected")]
        return cls(
            r["cluster"],
            r["node"],
            r["failures"],
            r["last_reason"],
            r["last_at"],
            *extra,
            r["unit"] if "unit" in keys else None,
        )


@dataclass(frozen=True)
class Sweep:
    """A sweep's definition, its points ({index, name, params}) and its job arrays."""

    name: str
    recipe: str
    cluster: str
    nodes: int
    max_parallel: int
    mode: str  # "array" or "jobs"
    definition: dict[str, Any]
    points: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    created_at: float

    @classmethod
    def of(cls, r: sqlite3.Row) -> Sweep:
        return cls(
            name=r["name"],
            recipe=r["recipe"],
            cluster=r["cluster"],
            nodes=r["nodes"],
            max_parallel=r["max_parallel"],
            mode=r["mode"],
            definition=_json(r["definition_json"], {}),
            points=[p for p in _json(r["points_json"], []) if isinstance(p, dict)],
            jobs=_json(r["jobs_json"], []),
            created_at=r["created_at"],
        )

    @property
    def point_names(self) -> list[str]:
        return [p["name"] for p in self.points]
