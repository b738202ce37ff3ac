"""What olmoctl's own per-rank and per-node work costs at scale (issue 23 item 2), measured on
synthetic fixtures (benchmarks/scale_fixtures.py): a LUMI 7b run of 8, 64, 512 and 2,048
ranks (1 to 256 nodes of 8 GCDs) after three attempts, in a store that also holds 1,000
finished runs with 100,000 attempts.

Each command runs in this process (olmoctl.cli.main.run(argv), stdout to a buffer) with
OLMOCTL_STATE_DIR at the fixture's store: once to import what it needs, then `--repeat`
times; the table shows the median wall time and, for one of those calls, the files it
opened (sys.addaudithook's `open` event: builtins.open, os.open and io.open_code, so every
Python-level open; sqlite's own opens of the store are not in it), how many of those were in
the run directory, and the directory listings (`os.scandir`/`os.listdir` events, glob's).
`cold s`: the same command as a fresh `olmoctl` process (imports included), once.

No Slurm is asked: the runs' attempts have ended and are classified, except in `classify`,
where the last attempt is still RUNNING in the store and a fake `sacct` on PATH (printed by
this script into the fixture folder) says it ended FAILED, so `status RUN` classifies it the
way the next real `status` would (one rank's traceback, every other rank's watchdog line).
Retention and the checkpoint listings are the functions the job and status call (no CLI
command does them): dcp.apply_retention on rank 0 after a save (one checkpoint removed),
LocalFiles.checkpoints (status) and dcp.list_complete (resume, export).
SSH requests are not counted here (see docs/scale.md).

    .venv/bin/python benchmarks/scale.py --root /work/scale-tmp/bench [--ranks 8 64] [--repeat 3]
Goals: each <= 1 s at 2,048 ranks; growth no worse than linear in ranks.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import scale_fixtures as sf  # noqa: E402

from olmoctl.paths import DB_NAME  # noqa: E402
from olmoctl.store import Store  # noqa: E402

RANKS = (8, 64, 512, 2048)


@dataclass
class Counts:
    """What one call opened, by the audit hook."""

    opens: int = 0
    in_run_dir: int = 0
    listings: int = 0
    run_dir: str = ""
    on: bool = False
    paths: list[str] = field(default_factory=list)

    def hook(self, event: str, args: tuple) -> None:  # type: ignore[type-arg]
        if not self.on:
            return
        if event == "open":
            path = args[0]
            if isinstance(path, bytes):
                path = path.decode(errors="replace")
            if not isinstance(path, str):
                return  # an fd (os.fdopen)
            self.opens += 1
            if self.run_dir and path.startswith(self.run_dir):
                self.in_run_dir += 1
        elif event in ("os.scandir", "os.listdir"):
            self.listings += 1


COUNTS = Counts()
sys.addaudithook(COUNTS.hook)


@dataclass
class Row:
    seconds: float
    opens: int
    in_run_dir: int
    listings: int
    cold_s: float | None = None


def measure(
    call: Callable[[], object],
    run_dir: str,
    repeat: int,
    before: Callable[[], object] | None = None,
) -> Row:
    """Median wall time of `repeat` calls (after one that imports), and one call's opens."""
    if before:
        before()
    call()  # imports, caches
    times = []
    for i in range(repeat):
        if before:
            before()
        if i == 0:
            COUNTS.__init__(run_dir=run_dir, on=True)  # type: ignore[misc]
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
        if i == 0:
            COUNTS.on = False
            counted = (COUNTS.opens, COUNTS.in_run_dir, COUNTS.listings)
    return Row(statistics.median(times), *counted)


def cli(argv: list[str]) -> Callable[[], object]:
    from olmoctl.cli.main import run

    def call() -> object:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()) as err:
            code = run(argv)
        if code != 0:
            raise SystemExit(f"olmoctl {' '.join(argv)}: exit {code}: {err.getvalue()[-300:]}")
        return out

    return call


def cold(argv: list[str], before: Callable[[], object] | None = None) -> float:
    if before:
        before()
    t = time.perf_counter()
    res = subprocess.run(
        [str(REPO / ".venv/bin/olmoctl"), *argv], capture_output=True, env=os.environ.copy()
    )
    took = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"olmoctl {' '.join(argv)}: exit {res.returncode}: {res.stderr[-300:]}")
    return took


def fake_slurm(bin_dir: Path, job_id: str, nodes: str) -> None:
    """A `sacct` that says the job ended FAILED (status RUN then classifies it)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    line = f"{job_id}|FAILED|{nodes}|2026-12-01T10:00:00|2026-12-01T16:00:00|1:0|None"
    for name, text in (("sacct", line), ("squeue", "")):
        p = bin_dir / name
        p.write_text(f"#!/bin/sh\necho '{text}'\n" if text else "#!/bin/sh\n")
        p.chmod(0o755)


def bench_size(root: Path, history: Path, ranks: int, repeat: int, do_cold: bool) -> dict[str, Row]:
    nodes = ranks // sf.GCDS
    runs_root = root / "runs"
    fx = sf.make_run(runs_root, nodes)
    run_dir = str(fx.run_dir)
    state = root / f"state-{ranks}"
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(history, state)
    sf.record_run(Store(state), fx)
    # The classify case: a store of its own where the last attempt is still live.
    live_template = root / f"state-{ranks}-live-template"
    shutil.rmtree(live_template, ignore_errors=True)
    sf.record_run(Store(live_template), fx, last_live=True)
    live = root / f"state-{ranks}-live"

    def fresh_live() -> None:
        shutil.rmtree(live, ignore_errors=True)
        shutil.copytree(live_template, live)

    fake_slurm(root / "bin", fx.attempts[-1].job_id, sf.node_list(nodes))
    os.environ["PATH"] = f"{root / 'bin'}:{os.environ['PATH']}"
    card_out = root / "card-out"
    from olmoctl.backends.files import LOCAL
    from olmoctl.schemas import contract as rd
    from olmoctl.train.checkpoint import dcp

    ckroot = rd.checkpoints_root(run_dir)
    # One complete checkpoint more than keep_last: each call removes the oldest, put back here.
    extra, oldest = fx.checkpoint_steps[-1] + 1, fx.checkpoint_steps[0]

    def add_checkpoint() -> None:
        w = sf._Writer(fx.run_dir)
        for step in (extra, oldest):
            if not (ckroot / rd.step_dir_name(step)).exists():
                sf._checkpoint(w, fx.run_dir, step, ranks, complete=True)

    keep = 3
    cases: dict[str, tuple[list[str] | Callable[[], object], Path, Callable[[], object] | None]] = {
        "status": (["status"], state, None),
        "status RUN": (["status", fx.name], state, None),
        "logs RUN": (["logs", fx.name], state, None),
        "logs RUN --rank": (["logs", fx.name, "--rank", str(fx.failing_rank)], state, None),
        "classify (status RUN)": (["status", fx.name], live, fresh_live),
        "card RUN": (["card", fx.name, "--out", str(card_out)], state, None),
        "retention (job)": (lambda: dcp.apply_retention(ckroot, keep, 0), state, add_checkpoint),
        "ckpt list (status)": (lambda: LOCAL.checkpoints(run_dir), state, None),
        "ckpt list (resume)": (lambda: dcp.list_complete(ckroot), state, None),
    }
    out: dict[str, Row] = {}
    for name, (what, st, before) in cases.items():
        os.environ["OLMOCTL_STATE_DIR"] = str(st)
        call = cli(what) if isinstance(what, list) else what
        row = measure(call, run_dir, repeat, before)
        if do_cold and isinstance(what, list):
            row.cold_s = cold(what, before)
        out[name] = row
    if "classify (status RUN)" in out:  # the verdict it recorded, as a check of the fixture
        a = Store(live).last_attempt(fx.name)
        assert a is not None and a.klass == "CODE_ERROR", a
        assert f"rank {fx.failing_rank}:" in (a.reason or ""), a.reason
    return out


def table(results: dict[int, dict[str, Row]]) -> str:
    names = list(next(iter(results.values())))
    lines = []
    for name in names:
        lines.append(f"\n{name}")
        lines.append(
            f"{'ranks':>6} {'seconds':>9} {'cold s':>7} {'opens':>7} {'in run dir':>10} "
            f"{'listings':>8}"
        )
        for ranks, rows in results.items():
            r = rows[name]
            cold_s = f"{r.cold_s:7.2f}" if r.cold_s is not None else f"{'-':>7}"
            lines.append(
                f"{ranks:>6} {r.seconds:9.3f} {cold_s} {r.opens:>7} {r.in_run_dir:>10} "
                f"{r.listings:>8}"
            )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("/work/scale-tmp/bench"))
    p.add_argument("--ranks", type=int, nargs="*", default=list(RANKS))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--history-runs", type=int, default=1000)
    p.add_argument("--history-attempts", type=int, default=100)
    p.add_argument("--no-cold", action="store_true", help="skip the fresh-process timings")
    p.add_argument("--keep", action="store_true", help="leave the fixtures in --root")
    a = p.parse_args()
    root = a.root
    shutil.rmtree(root, ignore_errors=True)
    history = root / "history"
    t = time.perf_counter()
    n = sf.make_store(
        history, root / "runs", runs=a.history_runs, attempts_per_run=a.history_attempts
    )
    db = (history / DB_NAME).stat().st_size
    print(
        f"history store: {a.history_runs} runs, {n} attempts, {db / 1e6:.0f} MB "
        f"({time.perf_counter() - t:.1f} s)"
    )
    results = {}
    try:
        for ranks in a.ranks:
            t = time.perf_counter()
            results[ranks] = bench_size(root, history, ranks, a.repeat, not a.no_cold)
            print(f"{ranks} ranks: {time.perf_counter() - t:.0f} s", flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
