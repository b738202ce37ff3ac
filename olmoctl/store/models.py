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
from olmoctl.store.columns import Columns, is_number
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


def _job_id(c: Columns) -> JobId | None:
    """The job id with the identity recorded for it (olmoctl.jobid), which every backend call
    that gets the id then carries along."""
    job_id = c.opt_text("job_id")
    return None if job_id is None else JobId(job_id, c.opt_text("job_identity"))


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
        c = Columns(r)
        summary = _json(c.opt_text("summary_json"), {}, c.bad, "summary_json")
        for k in _SUMMARY_NUMBERS:
            if summary.get(k) is not None and not is_number(summary[k]):
                c.bad.append(f"summary {k} is not a number")
                summary = {**summary, k: None}
        return cls(
            name=c.text("name"),
            recipe=c.text("recipe"),
            cluster=c.text("cluster"),
            nodes=c.int("nodes"),
            state=c.text("state"),
            run_dir=c.path("run_dir"),
            spec_json=c.text("spec_json"),
            total_steps=c.int("total_steps"),
            sweep=c.opt_text("sweep"),
            created_at=c.time("created_at"),
            updated_at=c.time("updated_at"),
            summary=summary,
            damage=c.damage,
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
    damage: str | None = None  # columns of the wrong kind, read as their defaults

    @classmethod
    def of(cls, r: sqlite3.Row) -> Attempt:
        c = Columns(r)
        return cls(
            id=c.int("id"),
            run_name=c.text("run_name"),
            attempt_no=c.int("attempt_no"),
            job_id=_job_id(c),
            cluster=c.text("cluster"),
            nodes=c.int("nodes"),
            node_list=c.opt_text("node_list"),
            submitted_at=c.opt_time("submitted_at"),
            started_at=c.opt_time("started_at"),
            ended_at=c.opt_time("ended_at"),
            # A damaged state reads as UNKNOWN: live, so status asks the scheduler again.
            state=AttemptState(c.text("state", AttemptState.UNKNOWN.value)),
            exit_code=c.opt_text("exit_code"),
            reason=c.opt_text("reason"),
            first_step=c.opt_int("first_step"),
            last_step=c.opt_int("last_step"),
            script=c.opt_text("script"),
            evidence=_json(c.opt_text("evidence_json"), {}, c.bad, "evidence_json"),
            restart_index=c.int("restart_index"),
            klass=c.opt_text("klass"),
            damage=c.damage,
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
        c = Columns(r)
        return cls(
            c.text("run_name"),
            c.int("step"),
            c.path("path"),
            bool(c.int("complete")),
            c.opt_int("bytes"),
            c.opt_time("saved_at"),
            c.opt_time("deleted_at"),
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
        c = Columns(r)  # (last_check.. unit: absent in an older schema, read as None)
        return cls(
            c.text("cluster"),
            c.text("node"),
            c.int("failures"),
            c.opt_text("last_reason"),
            c.opt_time("last_at"),
            c.opt_text("last_check"),
            c.opt_number("measured"),
            c.opt_number("expected"),
            c.opt_text("unit"),
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
        c = Columns(r)
        return cls(
            name=c.text("name"),
            recipe=c.text("recipe"),
            cluster=c.text("cluster"),
            nodes=c.int("nodes"),
            max_parallel=c.int("max_parallel"),
            mode=c.text("mode"),
            definition=_json(c.opt_text("definition_json"), {}),
            points=[p for p in _json(c.opt_text("points_json"), []) if isinstance(p, dict)],
            jobs=_json(c.opt_text("jobs_json"), []),
            created_at=c.time("created_at"),
        )

    @property
    def point_names(self) -> list[str]:
        return [p["name"] for p in self.points]
