"""Startup is sacred: the CLI loads no torch, submitit, fabric, paramiko, numpy, tensorboard or
wandb; `--help` and `status` load no more than they need (benchmarks/startup.py times them);
a wheel finds its data folders."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

HEAVY = ("torch", "submitit", "fabric", "paramiko", "numpy", "tensorboard", "wandb")
# Not needed to list or show runs: templates and YAML are for render/launch. (pydantic is not
# listed for `status`: typer itself builds its option parsers with it.)
NOT_FOR_STATUS = ("jinja2", "yaml")
NOT_FOR_HELP = (*NOT_FOR_STATUS, "pydantic")


def _imported(code: str) -> set[str]:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    mods = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return mods


def test_cli_import_loads_nothing_heavy() -> None:
    mods = _imported("import olmoctl.cli.main")
    assert "typer" in mods  # the measurement itself works
    assert not mods & set(HEAVY), mods & set(HEAVY)


def test_help_render_and_status_load_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from olmoctl.cli.main import main\n"
        "for argv in (['--help'], ['render', 'tiny', '-c', 'dev'], ['recipes'], ['status'],\n"
        "             ['status', '--json'], ['nodes']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "assert not heavy, heavy\n"
    )
    env = dict(os.environ, OLMOCTL_STATE_DIR=str(tmp_path / "state"))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)


def test_help_and_status_load_only_what_they_need(tmp_path: Path) -> None:
    env = dict(os.environ, OLMOCTL_STATE_DIR=str(tmp_path / "state"))
    for argv, banned in (
        (["--help"], NOT_FOR_HELP),
        (["status"], NOT_FOR_STATUS),
        (["status", "--json"], NOT_FOR_STATUS),
    ):
        code = (
            "import sys\n"
            "from olmoctl.cli.main import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            f"loaded = sorted({{m for m in sys.modules if m.split('.')[0] in {banned!r}}})\n"
            "assert not loaded, loaded\n"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert res.returncode == 0, f"olmoctl {' '.join(argv)}: {res.stderr[-2000:]}"


def test_wheel_carries_data_folders(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("olmoctl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for required in (
        "olmoctl/_data/templates/sbatch.sh.j2",
        "olmoctl/_data/clusters/lumi.yaml",
        "olmoctl/_data/recipes/7b.yaml",
    ):
        assert required in names
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import olmoctl, olmoctl.paths as p; from olmoctl.core.launch import render, specs\n"
        f"assert olmoctl.__file__.startswith({str(site)!r}), olmoctl.__file__\n"
        "assert '_data' in str(p.data_dir('templates'))\n"
        "print(render.render(specs.resolve('tiny', 'dev'))[:11])\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("#!/bin/bash")
