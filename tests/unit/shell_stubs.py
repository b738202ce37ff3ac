"""Run a rendered script under bash with stub srun/sbatch/scontrol/module/singularity/
apptainer/podman/bwrap/python on PATH, and tell whether any injected command ran.

The stubs execute the command they wrap (srun: what follows its options; singularity,
apptainer and podman: what follows `exec`/`run`, its options and the image; bwrap: what
follows `--`), so a value that turned into
code inside those commands runs too. Hostile test strings call `pwn` (a stub that creates
the marker file) or `touch pwned` (relative to the script's working directory): either file
appearing means an input became a command.
"""

from __future__ import annotations

import io
import os
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

HANG_GUARD_S = 60  # a script of ours runs in milliseconds; this only stops a hang

_STUBS = {
    # srun [--opt=value | -x]... CMD ARGS: run CMD ARGS
    "srun": 'while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n',
    "sbatch": 'while [ $# -gt 1 ] && [ "${1#-}" != "$1" ]; do shift; done\nexec bash "$@"\n',
    "scontrol": 'if [ "${1:-}" = show ] && [ "${2:-}" = hostnames ]; then echo node1; fi\n',
    "module": "exit 0\n",
    # conda's `source activate ENV` (a profile's python_env): sourced, so it must not exit
    "activate": ": conda activate stub\n",
    "python": 'printf "%s\\n" "$*" >>"$STUB_LOG"\n',
    "pwn": "touch {marker}\n",
}
# singularity/apptainer exec, podman run [-B|--bind|-v|--env BIND | --opt]... IMAGE CMD ARGS:
# run CMD ARGS
_CONTAINER = (
    'case "${1:-}" in exec|run) shift ;; esac\n'
    "while [ $# -gt 0 ]; do\n"
    '  case "$1" in -B|--bind|-v|--env) shift 2 ;; -*) shift ;; *) break ;; esac\n'
    "done\n"
    'shift\nexec "$@"\n'
)
# bwrap OPTIONS... -- CMD ARGS: run CMD ARGS (the template always ends bwrap's options with --)
_BWRAP = 'while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done\nshift\nexec "$@"\n'


@dataclass
class Ran:
    code: int
    out: str
    err: str
    pwned: bool  # an injected command ran
    python_calls: list[str]  # the stub python's argument lines, one per call


class Sandbox:
    """A temp dir with the stubs on PATH and a working directory for scripts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "stub-bin"
        self.cwd = root / "cwd"
        self.marker = root / "PWNED"
        self.log = root / "python-calls.log"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(exist_ok=True)
        stubs = {
            **_STUBS,
            "singularity": _CONTAINER,
            "apptainer": _CONTAINER,
            "podman": _CONTAINER,
            "bwrap": _BWRAP,
        }
        for name, body in stubs.items():
            path = self.bin / name
            path.write_text("#!/bin/bash\n" + body.replace("{marker}", str(self.marker)))
            path.chmod(0o755)

    def pwned(self) -> bool:
        return self.marker.exists() or (self.cwd / "pwned").exists()

    def run(self, script: str, env: dict[str, str] | None = None) -> Ran:
        path = self.root / "script.sh"
        path.write_text(script)
        self.log.write_text("")
        base = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "USER": "alice",
            "STUB_LOG": str(self.log),
            "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NODELIST": "node1",
            "SLURM_CPUS_PER_TASK": "1",
            # What `module load` sets on a Cray system (frontier's env prepends the first).
            "CRAY_LD_LIBRARY_PATH": "/opt/cray/pe/lib64",
            "LD_LIBRARY_PATH": "/usr/lib64",
        }
        res = subprocess.run(
            ["bash", str(path)],
            cwd=self.cwd,
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
        )
        calls = self.log.read_text().splitlines()
        return Ran(res.returncode, res.stdout, res.stderr, self.pwned(), calls)


def sandbox_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A Sandbox in tmp_path as the working directory, with a HOME inside it so `~` runs
    roots resolve (and get created) there: what each test file's `box` fixture starts from."""
    sandbox = Sandbox(tmp_path / "box")
    monkeypatch.setenv("HOME", str(sandbox.root / "home"))
    monkeypatch.chdir(sandbox.cwd)
    return sandbox


@dataclass
class Cli:
    code: int
    out: str
    err: str


def olmoctl(*args: str) -> Cli:
    """`olmoctl ARGS` in-process (usable inside a Hypothesis example: no fixtures)."""
    from olmoctl.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Cli(code, out.getvalue(), err.getvalue())


def refused_cleanly(res: Cli) -> bool:
    """Exit 2 with one line on stderr, no traceback, nothing on stdout."""
    lines = res.err.strip().splitlines()
    return (
        res.code == 2
        and res.out == ""
        and len(lines) == 1
        and lines[0].startswith("olmoctl: error: ")
        and "Traceback" not in res.err
    )


def set_env(env: dict[str, str]) -> dict[str, str | None]:
    """Set `env` in os.environ; returns what to restore with restore_env."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return saved


def restore_env(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
