"""Shell completion (typer's mechanism, `olmoctl --install-completion`): run names from the
local store, recipes and clusters from the catalog, answered without Slurm, SSH, YAML or
pydantic (a TAB must not take seconds: SkyPilot #887)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# Stubs for every external command olmoctl could reach: each leaves a mark if called.
EXTERNAL = ("sbatch", "squeue", "sacct", "scontrol", "scancel", "sinfo", "ssh", "srun")
HEAVY = ("torch", "submitit", "fabric", "paramiko", "pydantic", "yaml", "numpy", "jinja2")
PROBE = (
    "import atexit, sys\n"
    f"atexit.register(lambda: sys.stderr.write('loaded:' + ','.join(m for m in {HEAVY!r} "
    "if m in sys.modules) + '\\n'))\n"
    "from olmoctl.cli.main import main\n"
    "main()\n"
)


@pytest.fixture
def tab(tmp_path: Path, user_env: Path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    marks = tmp_path / "marks"
    for name in EXTERNAL:
        stub = stubs / name
        stub.write_text(f"#!/bin/sh\ntouch {marks}-{name}\nexit 1\n")
        stub.chmod(0o755)

    def complete(line: str) -> tuple[list[str], str]:
        words = line.split(" ")
        env = dict(
            os.environ,
            PATH=f"{stubs}:/usr/bin:/bin",
            PYTHONPATH=str(REPO),
            _OLMOCTL_COMPLETE="complete_bash",
            COMP_WORDS=line,
            COMP_CWORD=str(len(words) - 1),
        )
        res = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
        assert not list(tmp_path.glob("marks-*")), "completion ran an external command"
        return res.stdout.split(), res.stderr

    return complete


def _runs(tmp_path: Path, *names: str) -> None:
    from olmoctl.core.launch import specs
    from olmoctl.store import Store

    with Store().tx() as tx:
        for name in names:
            spec = specs.resolve(
                "tiny", "dev", name=name, overrides=[f"cluster.runs_root={tmp_path}"]
            )
            tx.create_run(spec, state="RUNNING")  # live: a status would ask Slurm; a TAB not


def test_run_names_come_from_the_local_store(tab, tmp_path: Path) -> None:
    _runs(tmp_path, "alpha-1", "alpha-2", "beta")
    for command in ("status", "logs", "cancel", "resume", "watch", "show", "card", "export"):
        got, err = tab(f"olmoctl {command} al")
        assert sorted(got) == ["alpha-1", "alpha-2"], (command, got)
        assert "loaded:\n" in err, err  # none of the heavy modules
    got, _ = tab("olmoctl launch --from b")
    assert got == ["beta"]


def test_no_store_completes_nothing_and_creates_nothing(tab, tmp_path: Path) -> None:
    got, _ = tab("olmoctl status ")
    assert got == []
    assert not (tmp_path / "state").exists()


def test_recipes_and_clusters_come_from_the_catalog(tab, user_env: Path) -> None:
    got, err = tab("olmoctl launch ")
    assert {"tiny", "1b", "7b", "65b"} <= set(got)
    assert "loaded:\n" in err, err
    (user_env / "recipes").mkdir(parents=True)
    (user_env / "recipes" / "mine.yaml").write_text("not even parsed: {")
    got, _ = tab("olmoctl plan m")
    assert got == ["mine"]
    got, _ = tab("olmoctl launch tiny --cluster l")
    assert sorted(got) == ["local", "lumi"]
    got, _ = tab("olmoctl render tiny -c fr")
    assert got == ["frontier"]


def test_install_completion_is_offered() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "olmoctl", "--help"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )  # fmt: skip
    assert "--install-completion" in res.stdout and "--show-completion" in res.stdout
