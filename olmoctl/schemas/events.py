"""RUN_DIR/events.jsonl: the events rank 0 of a job appends, as the job writes them
(olmoctl.train.observe.events.EventLog.emit) and the launcher reads them
(olmoctl.core.track.events).

Every line is one JSON object with "ts" (unix time, float) and "event" (an EventKind),
then the kind's fields:
  started          job_id, attempt, nodes, world_size, start_step, checkpoint_loaded,
                   versions {python, torch, cuda, rocm, numpy}, devices, seed, ...; on
                   rank 0 also code {version, source_sha256, git}, data {files, sha256} and
                   global_indices {size, sha256, method} (olmoctl.provenance)
  step             step, loss, lr, grad_norm, tokens_per_s, mfu, tokens_seen
  checkpoint_saved step, path, seconds, bytes
  heartbeat        step (every train.heartbeat_interval_s, from a thread)
  signal_received  signal, step
  exiting          reason (completed | preempted | error), exit_status, step[, error]
  eval             step, name (the eval set), loss, perplexity, batches, tokens, seconds
  warning          source, message (e.g. a metrics sink that failed and was turned off)
  straggler        step, rank, node, seconds, median_s, ratio, world_size, slowest
                   (every log interval with more than one rank: the slowest rank's compute
                   seconds per step vs the median rank's; olmoctl.train.observe.stragglers)
  burnin_node      job_id, attempt, node, ok, seconds, checks [{check, value, unit, limit,
                   ok, error, device}] (one per node of the allocation, before `burnin`)
  burnin           job_id, attempt, action (train | requeue | fail), nodes (allocation),
                   use, spare, excluded [{node, check, measured, expected, unit, reason}],
                   busbw_gbps, seconds, note (olmoctl.train.burnin, before step 1)

Reading is tolerant, so that run directories of older or newer jobs still read: every
field may be missing (None), unknown fields are kept (model_extra), an unknown kind parses
as a plain Event, and a line whose fields have the wrong types keeps only ts and event.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError


class EventKind(StrEnum):
    STARTED = "started"
    STEP = "step"
    CHECKPOINT_SAVED = "checkpoint_saved"
    HEARTBEAT = "heartbeat"
    SIGNAL_RECEIVED = "signal_received"
    EXITING = "exiting"
    EVAL = "eval"
    WARNING = "warning"
    STRAGGLER = "straggler"
    BURNIN_NODE = "burnin_node"
    BURNIN = "burnin"


class ExitReason(StrEnum):
    COMPLETED = "completed"
    PREEMPTED = "preempted"
    ERROR = "error"


class Event(BaseModel):
    """One line of events.jsonl; the subclasses are the known kinds' payloads."""

    # extra="allow": fields this version does not know are kept, not refused.
    # coerce_numbers_to_str: a job id written as a number still reads as text.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    KIND: ClassVar[EventKind | None] = None

    ts: float | None = None
    event: str = ""

    def model_post_init(self, context: Any, /) -> None:
        if not self.event and self.KIND is not None:  # a payload built by the job
            self.event = self.KIND.value

    def payload(self) -> dict[str, Any]:
        """The fields the job set (not ts/event), for writing: unset ones stay absent."""
        return self.model_dump(exclude_unset=True, exclude={"ts", "event"})


class Started(Event):
    KIND: ClassVar[EventKind | None] = EventKind.STARTED

    run: str | None = None
    job_id: str | None = None
    attempt: int | None = None
    launcher: str | None = None
    nodes: list[str] | None = None
    world_size: int | None = None
    start_step: int | None = None
    total_steps: int | None = None
    checkpoint_loaded: str | None = None
    grad_accum_steps: int | None = None
    tokens_per_step: int | None = None
    fsdp: bool | None = None
    # the speed settings as resolved for the device: compile, attention (SDPA order or
    # None for torch's), cross_entropy
    speed: dict[str, Any] | None = None
    versions: dict[str, Any] | None = None
    devices: dict[str, Any] | None = None
    threads: int | None = None
    pid: int | None = None
    seed: int | None = None
    # rank 0's provenance (olmoctl.provenance): code, data and global_indices fingerprints
    code: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    global_indices: dict[str, Any] | None = None


class Step(Event):
    KIND: ClassVar[EventKind | None] = EventKind.STEP

    step: int | None = None
    loss: float | None = None  # NaN/inf are written as null
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    tokens_seen: int | None = None


class CheckpointSaved(Event):
    KIND: ClassVar[EventKind | None] = EventKind.CHECKPOINT_SAVED

    step: int | None = None
    path: str | None = None
    seconds: float | None = None
    bytes: int | None = None
    stall_s: float | None = None  # training time the save cost (all of `seconds` when sync)
    mode: str | None = None  # sync | async
    permanent: bool | None = None  # kept for good by retention


class Heartbeat(Event):
    KIND: ClassVar[EventKind | None] = EventKind.HEARTBEAT

    step: int | None = None


class SignalReceived(Event):
    KIND: ClassVar[EventKind | None] = EventKind.SIGNAL_RECEIVED

    signal: str | None = None
    step: int | None = None


class Exiting(Event):
    KIND: ClassVar[EventKind | None] = EventKind.EXITING

    reason: str | None = None  # an ExitReason
    exit_status: int | None = None
    step: int | None = None
    error: str | None = None
    signal: str | None = None  # not written by this version; the classifier reads it if there


class Eval(Event):
    """One eval set's result at a step (in-loop evaluation, olmoctl.train.observe.evaluate)."""

    KIND: ClassVar[EventKind | None] = EventKind.EVAL

    step: int | None = None
    name: str | None = None  # the eval set
    loss: float | None = None  # mean next-token cross entropy over every token evaluated
    perplexity: float | None = None  # exp(loss)
    batches: int | None = None
    tokens: int | None = None
    seconds: float | None = None  # what this set's evaluation cost


class WarningEvent(Event):
    KIND: ClassVar[EventKind | None] = EventKind.WARNING

    source: str | None = None  # e.g. tensorboard, wandb
    message: str | None = None


class Straggler(Event):
    """The slowest rank of the last log interval: its compute seconds per step (the work a
    rank does alone, between collectives) against the median of the other ranks'."""

    KIND: ClassVar[EventKind | None] = EventKind.STRAGGLER

    step: int | None = None
    rank: int | None = None
    node: str | None = None
    seconds: float | None = None
    median_s: float | None = None
    ratio: float | None = None  # seconds / median_s (median_s: of the other ranks)
    world_size: int | None = None
    slowest: list[dict[str, Any]] | None = None  # up to 3: {rank, node, seconds}, slowest first


class BurninNode(Event):
    """One node's burn-in: every check it ran, with the measured numbers."""

    KIND: ClassVar[EventKind | None] = EventKind.BURNIN_NODE

    job_id: str | None = None
    attempt: int | None = None
    node: str | None = None
    ok: bool | None = None
    seconds: float | None = None
    checks: list[dict[str, Any]] | None = None


class Burnin(Event):
    """The burn-in's verdict for one incarnation of the job."""

    KIND: ClassVar[EventKind | None] = EventKind.BURNIN

    job_id: str | None = None
    attempt: int | None = None
    action: str | None = None  # train | requeue | fail (schemas/burnin.ACTIONS)
    nodes: list[str] | None = None
    use: list[str] | None = None
    spare: list[str] | None = None
    # {node, check, measured, expected, unit, reason} per node left out
    excluded: list[dict[str, Any]] | None = None
    busbw_gbps: float | None = None
    seconds: float | None = None
    note: str | None = None


MODELS: dict[str, type[Event]] = {
    m.KIND.value: m
    for m in (
        Started,
        Step,
        CheckpointSaved,
        Heartbeat,
        SignalReceived,
        Exiting,
        BurninNode,
        Burnin,
        Eval,
        WarningEvent,
        Straggler,
    )
    if m.KIND is not None
}


def parse_event(obj: Any) -> Event | None:
    """One decoded JSON line as its kind's model (tolerant, see above); None if it is not
    an event at all."""
    if not isinstance(obj, dict):
        return None
    model = MODELS.get(obj.get("event"), Event)  # type: ignore[arg-type]
    try:
        return model.model_validate(obj)
    except ValidationError:
        pass
    try:  # wrong field types: keep when and what it was, drop the payload
        return Event.model_validate({k: obj[k] for k in ("ts", "event") if k in obj})
    except ValidationError:
        return None
