"""What goes wrong with the state store, as one line that names the file and what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from olmoctl.errors import OlmoctlError, UsageError

MOVE_ASIDE = "move it aside (olmoctl then starts a new store) or set OLMOCTL_STATE_DIR elsewhere"


class StoreError(UsageError):
    """The store's file or directory is not one olmoctl can use (damaged, foreign, newer,
    unsafe): the user must act on it, so exit 2."""


class StoreBusy(OlmoctlError):
    """Another process held the store past the busy timeout, or the disk failed: a retry
    may succeed, so exit 1."""


class DamagedRow(OlmoctlError):
    """One row cannot be read (bad JSON, wrong types): that run fails, the others work."""

    def __init__(self, run: str, what: str) -> None:
        super().__init__(
            f"run {run!r}: its row in the state store is damaged ({what}); it cannot be "
            "shown, resumed or watched: `olmoctl status` lists the other runs"
        )


def translate(e: sqlite3.Error, path: Path) -> OlmoctlError:
    """sqlite's error on PATH as one line: busy/I-O (exit 1), anything else (exit 2)."""
    text = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
    low = text.lower()
    if "locked" in low or "busy" in low:
        return StoreBusy(
            f"state store {path} is busy (another olmoctl process held it too long): "
            "try again; if it stays busy, look for a stuck olmoctl process"
        )
    if "disk i/o" in low or "disk is full" in low or "database or disk is full" in low:
        return StoreBusy(f"state store {path}: {text}: check the disk, then try again")
    if "readonly" in low or "unable to open" in low:
        return StoreError(
            f"state store {path} is not writable ({text}): fix its permissions or set "
            "OLMOCTL_STATE_DIR to a writable directory"
        )
    if "no such table" in low or "no such column" in low:
        return StoreError(f"state store {path} is not an olmoctl store ({text}): {MOVE_ASIDE}")
    return StoreError(f"state store {path} is damaged ({text}): {MOVE_ASIDE}")
