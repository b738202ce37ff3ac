"""SIGUSR2 / SIGTERM -> a flag. Nothing else happens in the handler: the training loop
saves a checkpoint at the next step boundary and exits with EXIT_REQUEUE.

Slurm sends USR2 `signal_before_s` before the time limit to the batch script
(`--signal=B:USR2@N`), which forwards it to the ranks, and TERM to every process on
preemption or cancel. The handlers are installed over whatever was there and the previous
ones are put back afterwards. Requeueing is never the job's: the batch script does it from
the host once every rank has exited with EXIT_REQUEUE.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)


class StopFlag:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.received_at: float | None = None
        self.wake = threading.Event()  # wakes the heartbeat thread to log the signal
        self.previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            self.received_at = time.time()
        self.wake.set()

    def install(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None
