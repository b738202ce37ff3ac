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


# What each of them may load of olmoctl's own: the lazy group (cli/commands.py) imports the
# module of the command that runs, nothing else; `status` with no runs loads neither the
# store's rows nor core, and with no state dir not even sqlite3.
LOADS_CODE = (
    "import sys\n"
    "from olmoctl.cli.main import run\n"
    "try:\n"
    "    run({argv!r})\n"
    "except SystemExit:  # a TAB's answer exits\n"
    "    pass\n"
    "cmds = sorted(m for m in sys.modules if m.startswith('olmoctl.cli.')\n"
    "              and m.rsplit('.', 1)[1].endswith(('_cmd', '_cmds')))\n"
    "assert cmds == {cmds!r}, cmds\n"
    "banned = sorted(m for m in sys.modules if m.startswith({banned!r}))\n"
    "assert not banned, banned\n"
)
NOT_WITHOUT_RUNS = ("olmoctl.core", "olmoctl.store.db", "olmoctl.store.models", "olmoctl.backends",
                    "olmoctl.cli.status_view", "olmoctl.cli.text", "rich", "json")  # fmt: skip


def test_commands_load_only_their_own_module(tmp_path: Path) -> None:
    from olmoctl.store import Store

    empty = tmp_path / "empty"
    Store(empty).connect(create=True)  # a store without runs
    nothing = tmp_path / "nothing"  # no state dir at all (a fresh user)
    for state, argv, cmds, banned in (
        (nothing, ["--help"], [], ("olmoctl.store", "olmoctl.core", "sqlite3", "rich")),
        (nothing, [], [], ("olmoctl.store", "olmoctl.core", "rich")),
        (nothing, ["status"], ["olmoctl.cli.runs_cmds"], (*NOT_WITHOUT_RUNS, "sqlite3")),
        (empty, ["status"], ["olmoctl.cli.runs_cmds"], NOT_WITHOUT_RUNS),
        (empty, ["status", "--json"], ["olmoctl.cli.runs_cmds"], NOT_WITHOUT_RUNS),
        (nothing, ["clusters", "--help"], ["olmoctl.cli.catalog_cmds"], ("olmoctl.core",)),
        (nothing, ["_remote", "ops"], ["olmoctl.cli.remote_cmd"], ("olmoctl.core",)),
    ):
        code = LOADS_CODE.format(argv=argv, cmds=cmds, banned=banned)
        env = dict(os.environ, OLMOCTL_STATE_DIR=str(state))
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert res.returncode == 0, f"olmoctl {' '.join(argv)}: {res.stderr[-2000:]}"
    assert not nothing.exists()


def test_a_tab_on_the_command_name_loads_no_command_module() -> None:
    code = LOADS_CODE.replace("run({argv!r})", "run(None)")
    code = code.format(cmds=[], banned=("olmoctl.store",))
    env = dict(os.environ, _OLMOCTL_COMPLETE="complete_zsh", COMP_WORDS="olmoctl s", COMP_CWORD="1")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert '"status":"Every run at a glance' in res.stdout, res.stdout
