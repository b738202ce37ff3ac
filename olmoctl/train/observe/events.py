"""RUN_DIR/events.jsonl: one JSON object per line, appended by rank 0 only.

The kinds and their fields are pydantic models in olmoctl.schemas.events, which the
launcher parses the file with; the job writes nothing but those models. Each line is
written with one write() on an O_APPEND descriptor and fsync'd, so a crash (even SIGKILL)
loses at most the line being written and never leaves a torn one behind another.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from olmoctl.schemas.contract import EVENTS_FILE
from olmoctl.schemas.events import Event, SignalReceived
from olmoctl.schemas.events import Heartbeat as HeartbeatEvent


class Listener(Protocol):
    def on_event(self, event: Event) -> None: ...  # must not raise
    def close(self) -> None: ...


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class EventLog:
    """Appends events; a no-op on ranks other than 0. Listeners (the metrics sinks,
    olmoctl.train.observe.sinks) see each event after it is written, outside the lock."""

    def __init__(self, run_dir: Path | None, enabled: bool) -> None:
        self.path = run_dir / EVENTS_FILE if run_dir is not None else None
        self.enabled = enabled and self.path is not None
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.listeners: list[Listener] = []

    def emit(self, event: Event) -> None:
        if not self.enabled:
            return
        record = {"ts": time.time(), "event": event.event, **_clean(event.payload())}
        line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                assert self.path is not None
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line)
            os.fsync(self._fd)
        for listener in self.listeners:
            listener.on_event(event)

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class Heartbeat(threading.Thread):
    """Writes `heartbeat {step}` every interval, whatever the main thread is doing (a slow
    step or save releases the GIL in C++/IO), and logs a signal as soon as it arrives."""

    def __init__(
        self,
        log: EventLog,
        interval_s: float,
        step: Callable[[], int],
        wake: threading.Event,
        pending_signal: Callable[[], str | None],
    ) -> None:
        super().__init__(name="olmoctl-heartbeat", daemon=True)
        self.log = log
        self.interval_s = interval_s
        self.step = step
        self.wake = wake
        self.pending_signal = pending_signal
        self._halt = threading.Event()
        self._signal_logged = False
        self._signal_lock = threading.Lock()

    def run(self) -> None:
        next_beat = time.monotonic() + self.interval_s
        while not self._halt.is_set():
            self.wake.wait(timeout=max(0.0, next_beat - time.monotonic()))
            self.wake.clear()
            if self._halt.is_set():
                return
            self.log_signal_once(self.pending_signal())
            if time.monotonic() >= next_beat:
                self.log.emit(HeartbeatEvent(step=self.step()))
                next_beat = time.monotonic() + self.interval_s

    def log_signal_once(self, sig: str | None) -> None:
        """signal_received, once per attempt (from here or from the loop when another rank
        got the signal)."""
        with self._signal_lock:
            if not sig or self._signal_logged:
                return
            self._signal_logged = True
        self.log.emit(SignalReceived(signal=sig, step=self.step()))

    def stop(self) -> None:
        self._halt.set()
        self.wake.set()
        if self.is_alive():
            self.join(timeout=5)
