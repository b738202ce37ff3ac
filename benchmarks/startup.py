"""Startup time of the CLI against its floor, `python -c "import typer, rich"`.

Each command runs N times (interleaved, so a load spike hits all of them alike) in a fresh
interpreter; prints the median wall time and CPU time (user + system: steadier on a busy
machine) of each and their ratios to the floor. `status` runs on a state dir without a store
(a fresh user) and on a store without runs. The goal is <= 1.3x (CPU time), for `--help` and
both `status` rows.

    .venv/bin/python benchmarks/startup.py [N]

Where the time goes:  .venv/bin/python -X importtime -m olmoctl status 2>&1 | sort -t'|' -k2 -n
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# What the installed `olmoctl` console script does.
ENTRY = "import sys; from olmoctl.cli.main import main; sys.argv[0] = 'olmoctl'; sys.exit(main())"
FLOOR = "import typer, rich"
# typer's own work when it runs a command (its rich help; pydantic TypeAdapters for options,
# typer >= 0.2x), with nothing of olmoctl's: what no lazy import in olmoctl can remove.
BARE_TYPER = """
import sys, typer
app = typer.Typer(add_completion=False)
@app.callback()
def root(state_dir: str | None = typer.Option(None)) -> None: ...
@app.command()
def status(sweep: str | None = typer.Option(None), json: bool = False) -> None: ...
@app.command()
def other() -> None: ...
app(args=sys.argv[1:], standalone_mode=False)
"""
COMMANDS: dict[str, list[str]] = {
    'python -c "import typer, rich"': ["-c", FLOOR],
    "olmoctl --help": ["-c", ENTRY, "--help"],
    "olmoctl status (no store yet)": ["-c", ENTRY, "status"],
    "olmoctl status (empty store)": ["-c", ENTRY, "--state-dir", "{made}", "status"],
    "bare typer app --help": ["-c", BARE_TYPER, "--help"],
    "bare typer app status": ["-c", BARE_TYPER, "status"],
}


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run."""
    t0, c0 = time.perf_counter(), _cpu()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0, _cpu() - c0


def main(n: int = 20) -> None:
    with tempfile.TemporaryDirectory() as state, tempfile.TemporaryDirectory() as made:
        env = dict(os.environ, OLMOCTL_STATE_DIR=state)
        # An installed olmoctl runs from cached bytecode (pip compiles it): let the warm-up
        # write .pyc files (into a temp prefix) even where PYTHONDONTWRITEBYTECODE is set,
        # or every run would time the compiler (~12 ms here) instead of the imports.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "olmoctl-bench-pyc")
        # A store that exists but holds no runs (what a user has after their runs are pruned).
        init = "from olmoctl.store import Store; Store().connect(create=True)"
        made_env = dict(env, OLMOCTL_STATE_DIR=made)
        subprocess.run([sys.executable, "-c", init], env=made_env, check=True)
        for args in COMMANDS.values():
            args[:] = [made if a == "{made}" else a for a in args]
        for args in COMMANDS.values():  # warm the page cache and .pyc files
            _once(args, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
        for _ in range(n):
            for name, args in COMMANDS.items():
                times[name].append(_once(args, env))
    wall = {name: statistics.median(w for w, _ in t) for name, t in times.items()}
    cpu = {name: statistics.median(c for _, c in t) for name, t in times.items()}
    floor = next(iter(COMMANDS))
    print(f"{'':32} {'wall':>9}  {'ratio':>5}  {'cpu':>9}  {'ratio':>5}")
    for name in COMMANDS:
        print(
            f"{name:32} {1000 * wall[name]:6.1f} ms  {wall[name] / wall[floor]:4.2f}x"
            f"  {1000 * cpu[name]:6.1f} ms  {cpu[name] / cpu[floor]:4.2f}x"
        )
    print(f"({n} runs each, medians)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
