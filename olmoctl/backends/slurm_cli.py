"""Slurm's client commands, called with argument lists (never a shell), and their parsing."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime

from olmoctl.backends.base import JobInfo
from olmoctl.errors import OlmoctlError, UsageError

SACCT_FIELDS = "JobID,State,NodeList,Start,End,ExitCode,Reason"


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise UsageError(
            f"{args[0]} not found: this machine has no Slurm client on PATH "
            '(for the local cluster: eval "$(scripts/dev-cluster env)")'
        ) from None
    except subprocess.TimeoutExpired:
        raise OlmoctlError(f"{args[0]} did not answer within {timeout:.0f} s") from None


def _ts(value: str) -> float | None:
    if not value or value in ("Unknown", "None", "N/A"):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _state(raw: str) -> str:
    # "CANCELLED by 0" -> CANCELLED; "RUNNING+" -> RUNNING
    return raw.split(" ")[0].rstrip("+") if raw else "UNKNOWN"


def parse_sacct(text: str) -> dict[str, list[JobInfo]]:
    """job id -> its records, oldest first (with --duplicates, one per incarnation)."""
    jobs: dict[str, list[JobInfo]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 7:
            continue
        job_id, state, nodes, start, end, exit_code, reason = parts[:7]
        if "." in job_id:  # a step (batch, extern, 0): the allocation row says it all
            continue
        jobs.setdefault(job_id, []).append(
            JobInfo(
                job_id=job_id,
                state=_state(state),
                node_list=nodes if nodes and nodes != "None assigned" else None,
                start=_ts(start),
                end=_ts(end),
                exit_code=exit_code or None,
                reason=reason if reason and reason != "None" else None,
            )
        )
    return jobs


def sacct(job_ids: list[str]) -> tuple[dict[str, list[JobInfo]] | None, str]:
    """One sacct call for all jobs, every incarnation; (None, why) without accounting."""
    res = run(
        [
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            "--duplicates",
            f"--format={SACCT_FIELDS}",
            "-j",
            ",".join(job_ids),
        ]
    )
    if res.returncode != 0:
        return None, (res.stderr.strip().splitlines() or ["sacct failed"])[-1]
    return parse_sacct(res.stdout), ""


def squeue(job_ids: list[str]) -> dict[str, JobInfo]:
    fmt = "%i|%T|%N|%r"
    res = run(["squeue", "--noheader", "--states=all", "-o", fmt, "-j", ",".join(job_ids)])
    return parse_squeue(res.stdout)


def parse_squeue(text: str) -> dict[str, JobInfo]:
    """squeue -o '%i|%T|%N|%r' -> job id -> its record (a pending array range such as
    `5_[2-3%1]` stays one key: squeue -j 5_3 names the task itself)."""
    jobs: dict[str, JobInfo] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) == 4:
            jid, state, nodes, reason = parts
            jobs[jid] = JobInfo(jid, _state(state), nodes or None, reason=reason or None)
    return jobs


def node_states(nodes: str) -> dict[str, tuple[str, str]]:
    return parse_node_states(run(["scontrol", "-o", "show", "node", nodes]).stdout)


def parse_node_states(text: str) -> dict[str, tuple[str, str]]:
    """scontrol -o show node -> node -> (state, reason)."""
    out: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        name = re.search(r"NodeName=(\S+)", line)
        state = re.search(r"\bState=(\S+)", line)
        reason = re.search(r"\bReason=(.*?)(?: \w+=|$)", line)
        if name and state:
            out[name.group(1)] = (state.group(1), reason.group(1).strip() if reason else "")
    return out
