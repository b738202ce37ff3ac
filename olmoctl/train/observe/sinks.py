"""Metrics sinks beside events.jsonl: TensorBoard event files and Weights & Biases.

Off unless the recipe's `metrics` section turns them on (tensorboard: true; wandb.project);
W&B's mode is the recipe's metrics.wandb.mode, else the cluster profile's wandb_mode
(offline by default: RUN_DIR/wandb/offline-run-*, uploaded later with `wandb sync`). Both
packages are optional extras (`olmoctl[tensorboard]`, `olmoctl[wandb]`), imported here
only when a sink opens, on rank 0 only.

The sinks listen to rank 0's EventLog: they get the very `started`, `step`, `eval` and
`exiting` events that events.jsonl gets, after the line is written. A sink that fails
(package missing, disk error, wandb crash) is turned off for the rest of the attempt and
reported once as a `warning` event; training never stops for it.

Resumes: TensorBoard gets purge_step = start step + 1, so a resumed attempt hides what an
earlier one logged after the checkpoint it resumed from; every W&B attempt writes its own
offline directory under the run's one W&B id (resume="allow"), which `wandb sync` joins.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from olmoctl.schemas.contract import TENSORBOARD_DIR
from olmoctl.schemas.events import Eval, Event, Exiting, ExitReason, Started, Step, WarningEvent
from olmoctl.schemas.recipe import WandbConfig
from olmoctl.train.observe.events import EventLog
from olmoctl.train.runtime.config import JobConfig

STEP_KEYS = ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", "tokens_seen")


class Sink:
    name = ""

    def open(self, started: Started) -> None:
        raise NotImplementedError

    def log(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self, exiting: Exiting | None) -> None:
        pass


class TensorBoardSink(Sink):
    name = "tensorboard"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.writer: Any = None

    def open(self, started: Started) -> None:
        from torch.utils.tensorboard import SummaryWriter

        start = started.start_step or 0
        self.writer = SummaryWriter(
            str(self.log_dir), purge_step=start + 1 if start else None, flush_secs=10
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self, exiting: Exiting | None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def wandb_id(run_name: str, run_dir: Path) -> str:
    """The run's W&B id, the same for every attempt (so `wandb sync` joins them) and
    different for two runs of one name in different run directories."""
    digest = hashlib.sha256(str(run_dir.absolute()).encode()).hexdigest()[:8]
    return f"{run_name}-{digest}"


class WandbSink(Sink):
    name = "wandb"

    def __init__(
        self, cfg: WandbConfig, mode: str, run_dir: Path, run_name: str, config: dict[str, Any]
    ) -> None:
        self.cfg, self.mode, self.run_dir, self.run_name = cfg, mode, run_dir, run_name
        self.config = config
        self.run: Any = None

    def open(self, started: Started) -> None:
        import wandb

        self.run = wandb.init(
            project=self.cfg.project,
            entity=self.cfg.entity,
            name=self.run_name,
            id=wandb_id(self.run_name, self.run_dir),
            resume="allow",
            mode=self.mode,
            dir=str(self.run_dir),
            config={**self.config, "attempt": started.attempt, "job_id": started.job_id},
            # The rank log is the job's own: no console capture, no banners in it.
            settings=wandb.Settings(console="off", silent=True),
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self, exiting: Exiting | None) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        if exiting is not None and exiting.reason == ExitReason.PREEMPTED:
            run.mark_preempting()
        if exiting is None:  # interrupted before the job could say how it ended
            code = 1
        elif exiting.reason == ExitReason.ERROR:
            code = exiting.exit_status or 1
        else:  # completed, or preempted and to be resumed
            code = 0
        run.finish(exit_code=code)


def values_of(event: Event) -> tuple[int, dict[str, float]] | None:
    """The scalars a sink logs for an event, and its step (None: nothing to log)."""
    if isinstance(event, Step) and event.step is not None:
        raw = {f"train/{k}": getattr(event, k) for k in STEP_KEYS}
        step = event.step
    elif isinstance(event, Eval) and event.step is not None and event.name:
        raw = {
            f"eval/{event.name}/{k}": getattr(event, k) for k in ("loss", "perplexity", "seconds")
        }
        step = event.step
    else:
        return None
    # NaN/inf are written to events.jsonl as null; the sinks get the finite values only.
    values = {k: float(v) for k, v in raw.items() if v is not None and math.isfinite(float(v))}
    return step, values


class Sinks:
    """The EventLog listener that feeds every live sink and drops one that fails."""

    def __init__(self, sinks: list[Sink], warn: Callable[[Event], None]) -> None:
        self.live = list(sinks)
        self.warn = warn

    def on_event(self, event: Event) -> None:
        if isinstance(event, Started):
            self._each("open", lambda s: s.open(event))
        elif isinstance(event, Exiting):
            self._each("close", lambda s: s.close(event))
            self.live = []
        elif (got := values_of(event)) is not None:
            step, values = got
            self._each("log", lambda s: s.log(step, values))
            if isinstance(event, Eval):
                self._each("flush", lambda s: s.flush())

    def close(self) -> None:
        """The job ends without an `exiting` event (interrupted): close what is open."""
        self._each("close", lambda s: s.close(None))
        self.live = []

    def _each(self, what: str, call: Callable[[Sink], None]) -> None:
        for sink in list(self.live):
            try:
                call(sink)
            except Exception as e:  # a sink never stops training
                self.live.remove(sink)
                self._fail(sink, what, e)

    def _fail(self, sink: Sink, what: str, e: Exception) -> None:
        if isinstance(e, ImportError):
            why = f"{sink.name} is not installed (pip install 'olmoctl[{sink.name}]')"
        else:
            first = (str(e).strip().splitlines() or [""])[0][:300]
            why = f"{what} failed: {type(e).__name__}: {first}"
        message = f"{why}; metrics sink {sink.name} is off for the rest of this attempt"
        print(f"olmoctl.train: warning: {message}", file=sys.stderr, flush=True)
        if what != "close":
            with contextlib.suppress(Exception):  # release a writer thread, wandb's service
                sink.close(None)
        self.warn(WarningEvent(source=sink.name, message=message))


def build_sinks(job: JobConfig) -> list[Sink]:
    m = job.recipe.metrics
    sinks: list[Sink] = []
    if m.tensorboard:
        sinks.append(TensorBoardSink(job.run_dir / TENSORBOARD_DIR))
    if m.wandb is not None:
        mode = m.wandb.mode or (job.cluster.wandb_mode if job.cluster else "offline")
        config: dict[str, Any] = {"run": job.name, "recipe": job.recipe.model_dump(mode="json")}
        if job.spec is not None:
            config.update(nodes=job.spec.nodes, world_size=job.spec.world_size)
            config["cluster"] = job.spec.cluster.name
        sinks.append(WandbSink(m.wandb, mode, job.run_dir, job.name, config))
    return sinks


def attach(events: EventLog, job: JobConfig) -> None:
    """Rank 0: listen to `events` with the sinks the recipe turns on; nothing at all when it
    turns none on."""
    sinks = build_sinks(job)
    if sinks:
        events.listeners.append(Sinks(sinks, events.emit))
