"""Startup time of the CLI against its floor, `python -c "import typer, rich"`.

Each command runs N times (interleaved, so a load spike hits all of them alike) in a fresh
interpreter; prints the median wall time of each and its ratio to the floor. `status` runs
on an empty state store (a temporary OLMOCTL_STATE_DIR). The goal is <= 1.5x for both.

    .venv/bin/python benchmarks/startup.py [N]

Where the time goes:  .venv/bin/python -X importtime -m olmoctl status 2>&1 | sort -t'|' -k2 -n
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

# What the installed `olmoctl` console script does.
ENTRY = "import sys; from olmoctl.cli.main import main; sys.argv[0] = 'olmoctl'; sys.exit(main())"
FLOOR = "import typer, rich"
COMMANDS: dict[str, list[str]] = {
    'python -c "import typer, rich"': ["-c", FLOOR],
    "olmoctl --help": ["-c", ENTRY, "--help"],
    "olmoctl status (empty store)": ["-c", ENTRY, "status"],
}


def _once(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main(n: int = 20) -> None:
    with tempfile.TemporaryDirectory() as state:
        env = dict(os.environ, OLMOCTL_STATE_DIR=state)
        for args in COMMANDS.values():  # warm the page cache and .pyc files
            _once(args, env)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(n):
            for name, args in COMMANDS.items():
                times[name].append(_once(args, env))
    medians = {name: statistics.median(t) for name, t in times.items()}
    floor = next(iter(medians.values()))
    for name, med in medians.items():
        print(f"{name:32} {1000 * med:7.1f} ms  {med / floor:4.2f}x")
    print(f"({n} runs each, medians)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
