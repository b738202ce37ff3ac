"""Tasks of the burn-in step that ended as they started, read from srun's own lines.

A node whose task cannot start (its shared filesystem missing, no Python there) never
arrives at rank 0's meeting; without this, rank 0 waits the whole `start_timeout_s` for it
(191.7 s measured on the dev cluster, against ~40 s for a merely slow node). srun says at
once which task ended and how (`srun: error: node3: task 2: Exited with exit code 2`) in the
batch script's output, which the script names in OLMOCTL_BATCH_LOG with the size it had when
the step began (OLMOCTL_BATCH_LOG_FROM): rank 0 reads what srun wrote since, and stops
waiting once every missing task is accounted for. The log is a run-directory file (anyone's
text): read through olmoctl.fileread, bounded; only ASCII task numbers and host names count.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from olmoctl.schemas.shellsafe import HOST_RE

# srun's line for tasks that ended: one task or a list of ranges ("tasks 0-1,3").
_ENDED = re.compile(
    r"^srun: error: (?P<node>[^:\s]{1,200}): tasks? (?P<tasks>[0-9,-]{1,200}): "
    r"(?P<how>Exited with exit code [0-9]{1,3}|Killed|Terminated|Segmentation fault)",
    re.MULTILINE,
)
READ_MAX = 256 * 1024  # srun's lines of one burn-in step fit many times over
REREAD_S = 0.5  # rank 0 polls its meeting far more often than srun writes


def _tasks(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            continue
        first, last = int(lo), int(hi or lo)
        if 0 <= first <= last and last - first < 100_000:
            out.update(range(first, last + 1))
    return out


@dataclass
class GoneTasks:
    """rank -> (node, srun's words) for tasks srun saw end since the step began."""

    path: str | None = None
    offset: int = 0
    ranks: dict[int, tuple[str, str]] = field(default_factory=dict)
    read_at: float = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GoneTasks:
        env = os.environ if env is None else env
        start = env.get("OLMOCTL_BATCH_LOG_FROM", "")
        offset = int(start) if start.isascii() and start.isdigit() and len(start) < 16 else 0
        return cls(env.get("OLMOCTL_BATCH_LOG") or None, offset)

    def refresh(self) -> None:
        if not self.path:
            return
        from olmoctl import fileread

        try:
            text = fileread.read_from(self.path, self.offset, READ_MAX)
        except (OSError, fileread.Refused):
            return
        for m in _ENDED.finditer(text.decode("ascii", errors="replace")):
            node = m.group("node")
            if not HOST_RE.fullmatch(node):
                continue
            for rank in _tasks(m.group("tasks")):
                self.ranks.setdefault(rank, (node, m.group(0).removeprefix("srun: error: ")))

    def cover(self, missing: set[int]) -> bool:
        """Whether every rank in `missing` is known to have ended (re-reading the log)."""
        if not missing or not self.path:
            return False
        if time.monotonic() - self.read_at >= REREAD_S:
            self.read_at = time.monotonic()
            self.refresh()
        return missing <= set(self.ranks)

    def by_node(self) -> dict[str, str]:
        """node -> srun's words about its first task that ended."""
        out: dict[str, str] = {}
        for _, (node, words) in sorted(self.ranks.items()):
            out.setdefault(node, words)
        return out
