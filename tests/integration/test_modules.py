"""Issue 22 item 7 on the real local Slurm: a profile whose `modules:` need the site's module
init, launched from an environment without `module` (as olmoctl's remote server over SSH
is), completes, and its `module load` ran through the function that only module_init
defines (as Lmod's init defines `module`)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import REPO, DevCluster, Olmoctl

pytestmark = pytest.mark.slurm

# What a login shell would have brought along and a non-login one has not: an exported
# `module`/`ml` function (bash passes them as BASH_FUNC_NAME%%), a file every non-interactive
# bash reads, and Lmod's own variables.
LOGIN_ONLY = ("BASH_FUNC_", "BASH_ENV", "ENV", "MODULESHOME", "MODULEPATH", "LMOD")


def _init(tmp_path: Path, marker: Path) -> Path:
    """A module init: sourcing it defines `module`, which records each call in `marker`;
    like a site's start-up file it reads an unset variable and its last test fails."""
    m = shlex.quote(str(marker))
    init = tmp_path / "module-init.sh"
    init.write_text(
        f"echo sourced >>{m}\n"
        f'module() {{ printf "%s\\n" "$*" >>{m}; }}\n'
        ': "$OLMOCTL_SURELY_UNSET"\n'
        "[ -e /nonexistent ]\n"
    )
    return init


def test_modules_load_through_module_init_from_a_non_login_shell(
    olmoctl: Olmoctl, dev_cluster: DevCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "module-calls"
    profile = yaml.safe_load((REPO / "clusters" / "dev.yaml").read_text())
    profile.update(
        name="dev-modules",
        description="dev with modules that need the site's module init",
        modules=["olmoctl-test/1.0"],
        module_init=str(_init(tmp_path, marker)),
    )
    path = tmp_path / "dev-modules.yaml"
    path.write_text(yaml.safe_dump(profile))
    env = {k: v for k, v in olmoctl.env.items() if not k.startswith(LOGIN_ONLY)}
    args = ["launch", "tiny", "-c", str(path), "--nodes", "2", "--name", "mods", "--wait"]
    res = olmoctl(*args, "-o", olmoctl.root, "-o", "train.max_steps=4", env=env)
    assert res.returncode == 0, (res.stdout, res.stderr)
    state = olmoctl.run_state("mods")
    assert state["state"] == "COMPLETED", state
    assert state["step"] == 4
    job = int(state["attempt_list"][0]["job_id"])
    assert dev_cluster.sacct_state(job) == "COMPLETED"
    # Sourced once (the batch script had no `module`), then the load went through it.
    assert marker.read_text().splitlines() == ["sourced", "load olmoctl-test/1.0"]
    script = (olmoctl.runs / "mods" / "scripts" / "attempt-1.sh").read_text()
    assert f'olmoctl_module_init="{tmp_path}/module-init.sh"' in script
