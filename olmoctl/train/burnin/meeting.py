"""The burn-in's meeting place: a TCPStore that rank 0 hosts, with deadlines, where every
task says it arrived and reports its measurements."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from olmoctl.train.burnin.gone import GoneTasks

POLL_S = 0.05
MARGIN_S = 10.0  # on top of a phase's own limits before rank 0 stops waiting for a task


class Meeting:
    """The burn-in's TCPStore with deadlines: rank 0 hosts it and waits on the others."""

    def __init__(self, host: str, port: int, rank: int, timeout_s: float) -> None:
        import torch.distributed as dist

        self.rank = rank
        self.store = dist.TCPStore(
            host,
            port,
            is_master=rank == 0,
            timeout=timedelta(seconds=timeout_s),
            wait_for_workers=False,
        )

    def put(self, key: str, value: Any) -> None:
        self.store.set(key, json.dumps(value))

    def get(self, key: str, timeout_s: float) -> Any:
        self.store.wait([key], timedelta(seconds=max(0.01, timeout_s)))
        return json.loads(self.store.get(key))

    def collect(
        self, keys: list[str], deadline: float, gone: GoneTasks | None = None
    ) -> dict[str, Any]:
        """Those of `keys` (KIND/RANK) that appear before the deadline (monotonic), with their
        values; sooner when srun said every missing rank's task has ended (`gone`)."""
        got: dict[str, Any] = {}
        while True:
            for key in keys:
                if key not in got and self.store.check([key]):
                    got[key] = json.loads(self.store.get(key))
            if len(got) == len(keys) or time.monotonic() >= deadline:
                return got
            missing = {int(k.rsplit("/", 1)[1]) for k in keys if k not in got}
            if gone is not None and gone.cover(missing):
                return got
            time.sleep(POLL_S)
