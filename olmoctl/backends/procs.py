"""Local processes known by identity, not by pid alone: Linux reuses pids (pid_max is often
32,768), so a pid kept from earlier may name an unrelated process now. A process is its pid,
its start time (clock ticks since boot, /proc/PID/stat field 22) and the boot it started in;
olmoctl signals a process, or calls it alive, only while all three still match (Linux only:
without /proc nothing is ever identified, so nothing is ever signalled)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r"^(\d{1,20})@([0-9a-f-]{1,64})$")


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # clock ticks since boot
    boot: str  # /proc/sys/kernel/random/boot_id

    @property
    def token(self) -> str:
        """The identity as text (what the store keeps beside the pid)."""
        return f"{self.start}@{self.boot}"

    @classmethod
    def of_token(cls, pid: int, token: str | None) -> Proc | None:
        m = _TOKEN.match(token or "")
        return cls(pid, int(m.group(1)), m.group(2)) if m else None

    def started_at(self) -> float | None:
        """The start as unix time (to a second or so), None if the boot time is unknown."""
        try:
            stat = Path("/proc/stat").read_text()
            btime = int(next(ln.split()[1] for ln in stat.splitlines() if ln.startswith("btime")))
        except (OSError, StopIteration, ValueError, IndexError):
            return None
        return btime + self.start / os.sysconf("SC_CLK_TCK")


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, parent pid, start ticks) of the process with this pid now."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
        # the command name (field 2) may hold spaces and ')': the fields follow its last ')'
        fields = data[data.rindex(")") + 2 :].split()
        return fields[0], int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def identify(pid: int, parent: int | None = None) -> Proc | None:
    """The process that has `pid` now (None if there is none), and only if its parent is
    `parent` when that is given."""
    stat, boot = _stat(pid), _boot_id()
    if stat is None or boot is None or (parent is not None and stat[1] != parent):
        return None
    return Proc(pid, stat[2], boot)


def is_current(p: Proc) -> bool:
    """The pid still names this very process (a zombie included), not a later one."""
    return identify(p.pid) == p


def running(p: Proc) -> bool:
    """This very process exists and has not finished (a zombie has)."""
    stat = _stat(p.pid)
    return stat is not None and stat[2] == p.start and _boot_id() == p.boot and stat[0] != "Z"


def send(p: Proc, sig: int) -> bool:
    """Signal this very process, never a later one with its pid; False if it is gone. With a
    pidfd (Linux 5.3+) there is no window between the check and the signal: the pidfd is
    opened first, checked through /proc, and refers to the original process even if the
    pid is reused after."""
    fd: int | None = None
    try:
        fd = os.pidfd_open(p.pid)
    except (ProcessLookupError, PermissionError):
        return False
    except (AttributeError, OSError):
        fd = None  # no pidfds: check, then kill (a window of microseconds)
    try:
        if not is_current(p):
            return False
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(p.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if fd is not None:
            os.close(fd)


def descendants(p: Proc) -> list[Proc]:
    """The processes below `p` (children, theirs...), each identified as it is read and only
    if it is still the child of the process read before it; empty once `p` itself is gone
    (its pid's children then are a stranger's)."""
    out: list[Proc] = []
    todo = [p]
    while todo:
        parent = todo.pop()
        kids: list[int] = []
        task = f"/proc/{parent.pid}/task"
        with contextlib.suppress(OSError):
            for tid in os.listdir(task):
                with contextlib.suppress(OSError, ValueError):
                    kids += map(int, Path(f"{task}/{tid}/children").read_text().split())
        if not is_current(parent):
            continue  # read after the list: the children listed were this parent's
        for pid in kids:
            child = identify(pid, parent=parent.pid)
            if child is not None:
                out.append(child)
                todo.append(child)
    return out
