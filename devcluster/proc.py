"""Processes and the record, the ground every command stands on: messages and exits, running a
command, waiting for a condition, processes known by pid AND start time (so a recycled pid is
never mistaken for ours), the lock that serialises changes, and cluster.json."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from .settings import DIR, LOCK, RECORD


def say(msg: str) -> None:
    print(f"dev-cluster: {msg}", flush=True)


def die(msg: str, code: int = 1) -> NoReturn:
    print(f"dev-cluster: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def run(
    argv: list[str],
    check: bool = True,
    env: dict | None = None,
    timeout: float = 60,
    quiet: bool = False,
) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        die(f"{shlex.join(argv)} failed ({p.returncode}): {(p.stderr or p.stdout).strip()}")
    return p


def proc_start(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(entry: list | None) -> bool:
    return bool(entry) and proc_start(entry[0]) == entry[1]


def tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"   ({path}: no such file)"
    return "\n".join(f"   | {line}" for line in lines[-n:]) or f"   ({path}: empty)"


def ns_pids(ns: str) -> list[int]:
    p = run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []


def wait_until(pred, timeout: float, what: str, interval: float = 0.1, on_fail=None):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            if on_fail:
                on_fail()
            die(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def stop_pid(entry: list | None, sig=signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop one recorded process (checked by pid AND start time, so never a stranger)."""
    if not alive(entry):
        return
    pid = entry[0]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while alive(entry) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(entry):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(entry):
            time.sleep(0.05)


def kill_ns(ns: str, timeout: float = 10.0) -> None:
    """SIGKILL every process in one of our namespaces (a crashed machine)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in ns_pids(ns) if p != os.getpid()]
        if not pids:
            return
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        if time.monotonic() > deadline:
            die(f"processes {pids} in {ns} survive SIGKILL")
        time.sleep(0.05)


@contextlib.contextmanager
def locked():
    """Serialise commands that change the cluster (two pytest sessions may call `up`)."""
    DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def load_record() -> dict | None:
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return None


def save_record(rec: dict) -> None:
    tmp = RECORD.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(RECORD)
