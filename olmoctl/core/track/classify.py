"""Why did an attempt end? Classify from Slurm's record, the rank logs and the events, and
keep the evidence. Infrastructure classes are retried by `watch`; code errors and OOM never;
STORAGE (the checkpoint filesystem filled up during a save) only once there is room again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from olmoctl.schemas.contract import COLLECTIVE_SIGNS
from olmoctl.schemas.events import Exiting, ExitReason
from olmoctl.train.runtime.exit_codes import EXIT_STORAGE

COMPLETED = "COMPLETED"
TIMEOUT = "TIMEOUT"
PREEMPTED = "PREEMPTED"
NODE_FAIL = "NODE_FAIL"
RANK_KILLED = "RANK_KILLED"
COLLECTIVE = "COLLECTIVE"
HANG = "HANG"
OOM = "OOM"
CODE_ERROR = "CODE_ERROR"
STORAGE = "STORAGE"  # no space / quota during a checkpoint save (job exit EXIT_STORAGE)
CANCELLED = "CANCELLED"
UNKNOWN = "UNKNOWN"

# Retried automatically by `watch` (with backoff and a budget).
INFRA = frozenset({TIMEOUT, PREEMPTED, NODE_FAIL, RANK_KILLED, COLLECTIVE, HANG})

# Signatures of a failed collective (NCCL/RCCL/gloo) in rank logs: the network or a peer.
NODE_FAILURE_LINE = re.compile(r"Node failure on (\S+)")
# The batch script's own line when a job with spares lost more nodes than it can restart
# without (templates/restarts.sh.j2): the job ended FAILED, but as a node failure.
LOST_ENDS_HERE = re.compile(r"olmoctl: lost ([^\s:]+): [^\n]*; job \S+ ends here \(NODE_FAIL\)")
KILLED_TASK = re.compile(r"srun: error: (\S+): task ([0-9]{1,9}): Killed")
# The job's one line (olmoctl.train.checkpoint.storage.no_space_line).
NO_SPACE_LINE = re.compile(r"no space left on \S.* while saving step [0-9]+: needs ~[^\n]*")
# ASCII digits, a bounded number: a log is anyone's text (float('.') raised, 400 digits
# overflowed int()).
_NEEDS = re.compile(r"needs ~([0-9]{1,12}(?:\.[0-9]{1,6})?) (GB|MB)")
OOM_SIGNS = re.compile(r"Out of memory|oom-kill|OOM Killed|CUDA out of memory|HIP out of memory")


@dataclass
class Verdict:
    klass: str
    reason: str
    nodes: list[str] = field(default_factory=list)  # nodes to blame (node health)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def infra(self) -> bool:
        return self.klass in INFRA


TAIL_BYTES = 64 * 1024  # of each log read to classify an ending
# Slurm end states classify() settles from the batch log alone (it reads the rank logs for
# the others, FAILED...): a remote status fetches no rank logs for these.
BATCH_LOG_SUFFICES = frozenset(
    {"COMPLETED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "REQUEUED", "OUT_OF_MEMORY"}
)


def _tail(path: Path, nbytes: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - nbytes))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


_EXC_LINE = re.compile(
    r"^(?:\[rank\d+\]: )?[A-Za-z_][\w.]*(?:Error|Exception|Failed|Interrupt|Exit)\b"
)
# Wrappers that re-raise the real error: report what they wrap, not them.
_WRAPPERS = ("TrainFailed", "FailedJobError")


def _traceback_tail(text: str, lines: int = 12) -> list[str] | None:
    """The last lines of the first traceback in `text` that is not a wrapper's re-raise
    (the root cause), ending at its exception line; None without a traceback."""
    marker = "Traceback (most recent call last):"
    if marker not in text:
        return None
    found: list[list[str]] = []
    for chunk in text.split(marker)[1:]:
        body = chunk.strip().splitlines()
        for i, line in enumerate(body):
            if i > 0 and _EXC_LINE.match(line):
                body = body[: i + 1]
                break
        found.append(body)
    real = [b for b in found if not any(w in b[-1] for w in _WRAPPERS)] or found
    return real[0][-lines:]


def classify(
    *,
    slurm_state: str,
    exit_code: str | None,
    node_list: list[str],
    batch_log: Path | None,
    rank_logs: dict[int, Path],
    exiting: Exiting | None,
    down_nodes: dict[str, str],
    cancelled_by_user: bool = False,
    killed: bool = False,
    hang: bool = False,
    tail: Callable[[Path], str] = _tail,
) -> Verdict:
    """`exiting` is this attempt's `exiting` event (if the job wrote one); `down_nodes` maps
    node -> scontrol state/reason for those of the job's nodes that are down or drained.
    `tail` reads the end of a log (default: from this machine's filesystem)."""
    batch = tail(batch_log) if batch_log else ""
    ev: dict[str, Any] = {"slurm_state": slurm_state, "exit_code": exit_code}
    if hang:
        return Verdict(HANG, "no training progress within the hang timeout", evidence=ev)
    if cancelled_by_user:
        return Verdict(CANCELLED, "cancelled by user", evidence=ev)
    reason = exiting.reason if exiting else None
    if slurm_state == "COMPLETED" and reason in (None, ExitReason.COMPLETED):
        return Verdict(COMPLETED, "completed", evidence=ev)
    if killed and exiting is None:  # the local backend's word: no exit, no exception
        ev["signal"] = "unknown (not a child of olmoctl: its status is not ours to read)"
        return Verdict(RANK_KILLED, "killed by a signal: no exit of its own", evidence=ev)
    # Slurm's word wins over the job's: at the time limit and on scancel it sends SIGTERM,
    # which the job answers like a preemption (save, exit), but what stopped it was the time
    # limit or a cancellation (a real preemption or requeue reads PREEMPTED/REQUEUED).
    saved = ", checkpoint saved" if reason == ExitReason.PREEMPTED else ""
    if slurm_state == "TIMEOUT":
        return Verdict(TIMEOUT, f"time limit reached{saved}", evidence=ev)
    if slurm_state == "CANCELLED" and "DUE TO" not in batch:  # scancel, not Slurm's ending
        return Verdict(CANCELLED, f"cancelled (not by olmoctl){saved}", evidence=ev)
    if reason == ExitReason.PREEMPTED or slurm_state in ("PREEMPTED", "REQUEUED"):
        sig = (exiting.signal if exiting else None) or ""
        return Verdict(
            PREEMPTED, f"stopped by Slurm {sig}".strip() + ", checkpoint saved", evidence=ev
        )
    if "DUE TO TIME LIMIT" in batch:
        return Verdict(TIMEOUT, "time limit reached", evidence=ev)
    if slurm_state == "NODE_FAIL" or "DUE TO NODE FAILURE" in batch:
        named = sorted(set(NODE_FAILURE_LINE.findall(batch)))
        nodes = sorted(set(named) | set(down_nodes))
        ev["down_nodes"] = down_nodes
        if not nodes:  # nothing names the culprit: blame no one rather than everyone
            ev["attributed_by"] = "unknown"
            return Verdict(NODE_FAIL, f"node failure on one of {','.join(node_list)}", [], ev)
        ev["attributed_by"] = "log" if named else "scontrol"
        return Verdict(NODE_FAIL, f"node failure on {','.join(nodes)}", nodes, ev)
    lost = LOST_ENDS_HERE.findall(batch) if slurm_state == "FAILED" else []
    if lost:
        nodes = sorted(set(lost[-1].split(",")))
        ev.update(down_nodes=down_nodes, attributed_by="olmoctl")
        return Verdict(NODE_FAIL, f"node failure on {','.join(nodes)}", nodes, ev)
    if slurm_state == "OUT_OF_MEMORY" or OOM_SIGNS.search(batch):
        return Verdict(OOM, "out of memory", evidence=ev)
    if slurm_state == "CANCELLED":
        return Verdict(CANCELLED, "cancelled (not by olmoctl)", evidence=ev)

    # FAILED and the rest: read the ranks. A full checkpoint filesystem first (every rank
    # agrees on it and exits EXIT_STORAGE), a rank killed by a signal (its peers then fail
    # in collectives, with tracebacks of their own), then collectives, then code.
    logs = {r: tail(p) for r, p in sorted(rank_logs.items())}
    storage = _no_space(exiting, logs)
    if storage is not None:
        ev["needed_bytes"] = needed_bytes(storage)
        return Verdict(STORAGE, storage, evidence=ev)
    killed = KILLED_TASK.findall(batch)
    for node, task in killed:
        rank = int(task)
        if _traceback_tail(logs.get(rank, "")) is None:
            ev["killed_rank"] = rank
            return Verdict(RANK_KILLED, f"rank {rank} on {node} was killed", evidence=ev)
    for rank, text in logs.items():
        m = COLLECTIVE_SIGNS.search(text)
        if m and not _is_bad_input(text):
            tb = _traceback_tail(text)
            first_code = _first_code_error(logs)
            if first_code is not None and first_code[0] != rank:
                break  # another rank failed in code first; the collective is a consequence
            ev.update(rank=rank, signature=m.group(0), last_lines=tb or [])
            return Verdict(
                COLLECTIVE, f"collective failure on rank {rank}: {m.group(0)}", evidence=ev
            )
    first = _first_code_error(logs)
    if first is not None:
        rank, tb = first
        ev.update(rank=rank, last_lines=tb)
        return Verdict(CODE_ERROR, f"rank {rank}: {tb[-1] if tb else 'error'}", evidence=ev)
    if exiting and exiting.reason == ExitReason.ERROR:
        return Verdict(CODE_ERROR, exiting.error or "the job reported an error", evidence=ev)
    return Verdict(UNKNOWN, f"{slurm_state} exit {exit_code}", evidence=ev)


def _no_space(exiting: Exiting | None, logs: dict[int, str]) -> str | None:
    """The job's no-space line when the attempt ended on a full checkpoint filesystem."""
    if exiting is not None and exiting.exit_status == EXIT_STORAGE:
        return exiting.error or "no space left while saving a checkpoint"
    for text in logs.values():
        m = NO_SPACE_LINE.search(text)
        if m:
            return m.group(0)
    return None


def needed_bytes(line: str) -> int | None:
    """The size a no-space line says the checkpoint needs ("needs ~1.4 GB")."""
    m = _NEEDS.search(line)
    return int(float(m.group(1)) * (1e9 if m.group(2) == "GB" else 1e6)) if m else None


def _is_bad_input(text: str) -> bool:
    return "olmoctl: error:" in text


def _first_code_error(logs: dict[int, str]) -> tuple[int, list[str]] | None:
    """The lowest rank whose log ends in a traceback that is not a collective failure."""
    for rank, text in logs.items():
        tb = _traceback_tail(text)
        if tb is not None and not COLLECTIVE_SIGNS.search("\n".join(tb)):
            return rank, tb
    return None
