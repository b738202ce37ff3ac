"""The hostile run-directory matrix of test_hostile_run_dir.py, run in a subprocess of its
own (`python -m tests.unit.hostile_runs RESULTS.json`): its memory is measured there
(ru_maxrss growth), and a command that hangs (a FIFO read) only costs a thread.

Every kind of entry others can put in a run directory is planted at every file name the
launcher reads, and every reading command runs in-process against it, each in a thread
joined with a hang guard. One JSON line per case goes to RESULTS.json."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HANG_GUARD_S = 30.0  # a command takes well under a second here: this is a hang guard only
HUGE = 256 << 20  # larger than any bound olmoctl reads, and than the memory allowed (200 MB)
JOB = "101"  # the fake scheduler's first job id

KINDS = ("fifo", "link_dev_zero", "link_outside", "directory", "socket", "huge", "link_loop")
NAMES = (
    "events.jsonl",
    "record.json",
    "spec.json",
    f"logs/{JOB}-rank0.out",
    f"logs/slurm-{JOB}.out",
    f"burnin/{JOB}-0.verdict",
    "preflight/rank-0.json",
    "checkpoints/step_00000010/.complete",
)
COMMANDS = (
    ("status",),
    ("status", "r"),
    ("logs", "r"),
    ("logs", "r", "--batch"),
    ("card", "r"),
    ("show", "r"),
)
STEP = {"event": "step", "ts": 1.0, "step": 10, "loss": 2.5}


class Sink(io.StringIO):
    """stdout/stderr of one command: its first and last 64 KiB kept, the rest counted."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.tail = ""
        self.hellos = 0  # the template's log lines seen, wherever in a long output

    def write(self, s: str) -> int:
        self.count += len(s)
        self.hellos += s.count("says hello")
        if self.tell() < 65536:
            super().write(s[:65536])
        self.tail = (self.tail + s[-65536:])[-65536:]
        return len(s)

    def text(self) -> str:
        head = self.getvalue()
        return head if self.count == len(head) else head[:4000] + " ... " + self.tail[-4000:]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run(argv: list[str]) -> dict[str, Any]:
    from olmoctl.cli.main import main

    out, err = Sink(), Sink()
    got: dict[str, Any] = {}

    def target() -> None:
        try:
            main(argv)
            got["code"] = 0
        except SystemExit as e:
            got["code"] = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # a traceback is a finding here, not a crash
            got["code"] = f"raised {type(e).__name__}: {e}"

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    thread = threading.Thread(target=target, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(HANG_GUARD_S)
    sys.stdout, sys.stderr = saved
    return {
        "hung": thread.is_alive(),
        "code": got.get("code"),
        "out": out.text(),
        "err": err.text(),
        "out_chars": out.count,
        "out_hellos": out.hellos,
        "seconds": round(time.monotonic() - start, 2),
    }


def _template(root: Path) -> None:
    """Two runs on a fake Slurm whose first job has FAILED (so status classifies it and
    reads its logs): `r`, whose directory is attacked, and `ok`, which must still print."""
    from olmoctl.backends import registry
    from olmoctl.backends.base import JobInfo, QueryResult
    from olmoctl.core.launch import submit as launch
    from olmoctl.core.track import status
    from olmoctl.store import Store
    from tests.unit.test_store import FakeBackend

    class Ended(FakeBackend):
        def query(self, job_ids):  # type: ignore[no-untyped-def]
            jobs = {j: JobInfo(j, "FAILED", "node1", exit_code="1:0", end=2.0) for j in job_ids}
            return QueryResult(jobs, "sacct", history={j: [i] for j, i in jobs.items()})

    fake = Ended()
    registry.backend_for = lambda *a, **k: fake  # type: ignore[assignment]
    status.backend_for = lambda *a, **k: fake  # type: ignore[assignment]
    store = Store()
    for name in ("r", "ok"):
        spec = launch.prepare(store, "tiny", "dev", nodes=1, name=name, time_limit=None,
                              overrides=[f"cluster.runs_root={root / 'runs'}"])  # fmt: skip
        launch.submit_attempt(store, spec, fake, new_run=True)
        run_dir = Path(spec.run_dir)
        (run_dir / "events.jsonl").write_text(json.dumps(STEP) + "\n")
        job = str(fake.next_id)
        (run_dir / "logs" / f"{job}-rank0.out").write_text("rank 0 says hello\n")
        (run_dir / "logs" / f"{job}-rank1.out").write_text("rank 1 says hello\n")
        (run_dir / "logs" / f"slurm-{job}.out").write_text("the batch script\n")
        for sub in ("burnin", "preflight", "checkpoints/step_00000010"):
            (run_dir / sub).mkdir(parents=True)
        (run_dir / "burnin" / f"{job}-0.verdict").write_text("action=train\n")
        (run_dir / "preflight" / "rank-0.json").write_text("{}\n")
        (run_dir / "checkpoints/step_00000010/.complete").write_text('{"step": 10}\n')


def _plant(kind: str, path: Path, outside: Path, huge: Path) -> socket.socket | None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link_dev_zero":
        os.symlink("/dev/zero", path)
    elif kind == "link_outside":
        os.symlink(outside, path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        return s
    elif kind == "huge":
        os.link(huge, path)
    elif kind == "link_loop":
        os.symlink(path.name, path)
    return None


def main(results: str) -> None:
    sys.modules["matplotlib"] = None  # type: ignore[assignment]  # card without its PNG: the
    # plot reads nothing from the run directory, and drawing it 50 times is most of the time
    base = Path(tempfile.mkdtemp(prefix="h", dir="/tmp"))  # short: a socket path is <108
    root, saved = base / "w", base / "template"
    os.environ.update(
        HOME=str(base / "home"),
        OLMOCTL_CONFIG_DIR=str(base / "config"),
        OLMOCTL_STATE_DIR=str(root / "state"),
        MPLCONFIGDIR=str(base / "mpl"),
    )
    for var in ("OLMOCTL_ACCOUNT", "SBATCH_ACCOUNT"):
        os.environ.pop(var, None)
    outside = base / "outside.txt"
    outside.write_text(json.dumps(STEP) + "\n")
    huge = base / "huge"
    with open(huge, "wb") as f:  # real bytes: a sparse file's zeros would be escaped 4x
        block = (b"x" * 1023 + b"\n") * 1024
        for _ in range(HUGE // len(block)):
            f.write(block)
    _template(root)
    shutil.copytree(root, saved, symlinks=True)
    with open(results, "w") as out:
        for argv in COMMANDS:  # warm up: imports (matplotlib...) are not what is measured
            _run(list(argv))
        baseline = _rss_mb()
        for kind in KINDS:
            for name in NAMES:
                for argv in COMMANDS:
                    shutil.rmtree(root)
                    shutil.copytree(saved, root, symlinks=True)
                    path = root / "runs" / "r" / name
                    held = _plant(kind, path, outside, huge)
                    case = _run(list(argv))
                    if held is not None:
                        held.close()
                    case.update(kind=kind, name=name, argv=list(argv))
                    case["rss_growth_mb"] = round(_rss_mb() - baseline, 1)
                    out.write(json.dumps(case) + "\n")
                    out.flush()
    with contextlib.suppress(OSError):
        shutil.rmtree(base)
    os._exit(0)  # a hung command's thread must not keep the process alive


if __name__ == "__main__":
    main(sys.argv[1])
