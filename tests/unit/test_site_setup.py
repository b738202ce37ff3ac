"""Issue 22 items 6-9: what the batch script does for a site before any rank starts, run
under stubs (tests/unit/shell_stubs.py): `module` defined from the profile's module_init
when the job came from a non-login shell (item 7), one pyxis import per attempt (item 6),
bubblewrap binding what Singularity binds and checking its mount points (item 8), and each
shipped profile's rendered script holding what its cited reference requires (item 9)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from olmoctl.core.launch.containers import HOST_FILES
from tests.conftest import REPO
from tests.unit.shell_stubs import Sandbox, olmoctl, refused_cleanly, sandbox_home


@pytest.fixture
def box(tmp_path: Path, user_env: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return sandbox_home(tmp_path, monkeypatch)


def _profile(tmp_path: Path, base: str = "dev", **changes: object) -> str:
    data = yaml.safe_load((REPO / "clusters" / f"{base}.yaml").read_text())
    data.update(runs_root=str(tmp_path / "runs"), **changes)
    path = tmp_path / f"{base}-site.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _render(*args: str) -> str:
    res = olmoctl("render", "tiny", *args)
    assert res.code == 0, res.err
    return res.out


# -- item 7: `module` in a job sent from a non-login shell ---------------------------------
def _module_init(tmp_path: Path, body: str) -> Path:
    init = tmp_path / "module-init.sh"
    init.write_text(body)
    return init


# As Lmod's init does: `module` is a function that exists only once this file is sourced.
# The file also reads an unset variable and ends with a failing test, as start-up files do.
FAKE_INIT = """module() {{ printf '%s\\n' "$*" >>{log}; }}
: "$OLMOCTL_SURELY_UNSET"
[ -e /nonexistent ] && echo never
"""


def test_module_comes_from_module_init_when_the_job_has_none(box: Sandbox, tmp_path: Path) -> None:
    (box.bin / "module").unlink()  # a non-login shell: no `module` anywhere
    log = tmp_path / "module.log"
    init = _module_init(tmp_path, FAKE_INIT.format(log=log))
    prof = _profile(tmp_path, modules=["site-a/1.0", "site-b"], module_init=str(init))
    ran = box.run(_render("-c", prof))
    assert ran.code == 0, ran.err
    assert log.read_text() == "load site-a/1.0 site-b\n"
    assert ran.python_calls  # set -eu came back and the script ran on to the ranks


def test_module_init_is_not_sourced_when_module_is_there(box: Sandbox, tmp_path: Path) -> None:
    marker = tmp_path / "sourced"
    init = _module_init(tmp_path, f"touch {marker}\n")
    prof = _profile(tmp_path, modules=["site-a"], module_init=str(init))
    ran = box.run(_render("-c", prof))  # the stub `module` is on PATH
    assert ran.code == 0, ran.err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("true\n", "'module' is still not defined after sourcing"),
        (None, "is not a readable file"),
    ],
)
def test_module_init_that_does_not_define_module_is_one_line(
    box: Sandbox, tmp_path: Path, body: str | None, says: str
) -> None:
    (box.bin / "module").unlink()
    init = _module_init(tmp_path, body) if body is not None else tmp_path / "no-such-init"
    prof = _profile(tmp_path, modules=["site-a"], module_init=str(init))
    ran = box.run(_render("-c", prof))
    assert ran.code == 1
    assert ran.err.strip().splitlines() == [ran.err.strip()] and says in ran.err
    assert str(init) in ran.err
    assert not ran.python_calls


def test_python_env_modules_need_the_init_too(box: Sandbox, tmp_path: Path) -> None:
    (box.bin / "module").unlink()
    log = tmp_path / "module.log"
    init = _module_init(tmp_path, FAKE_INIT.format(log=log))
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "activate").write_text(": venv\n")
    pyenv = {"modules": ["python/3.12"], "venv": str(tmp_path / "venv")}
    prof = _profile(tmp_path, python_env=pyenv, module_init=str(init))
    ran = box.run(_render("-c", prof))
    assert ran.code == 0, ran.err
    assert log.read_text() == "load python/3.12\n"


def test_no_module_no_init(box: Sandbox) -> None:
    for cluster in ("dev", "dev-container", "local", "a100", "h100"):
        assert "module_init" not in _render("-c", cluster, "-o", "cluster.account=p1")


@pytest.mark.parametrize("value", ["$(touch ./pwned)", "", "`pwn`", "${X@P}"])
def test_module_init_is_checked_like_every_string(box: Sandbox, value: str) -> None:
    res = olmoctl("render", "tiny", "-c", "frontier", "-o", "cluster.account=p1",
                  "-o", f"cluster.module_init={value}")  # fmt: skip
    assert refused_cleanly(res), res.err
    assert "module_init" in res.err
    assert not box.pwned()


def test_module_init_is_data_in_the_script(box: Sandbox, tmp_path: Path) -> None:
    """What the validator lets through (`;`, `|`, spaces, a $NAME) is one word, a file name."""
    (box.bin / "module").unlink()
    prof = _profile(tmp_path, modules=["a"], module_init="/etc/x; pwn | pwn $HOME")
    ran = box.run(_render("-c", prof))
    assert ran.code == 1 and not ran.pwned
    assert f"module_init /etc/x; pwn | pwn {box.root}/home is not a readable file" in ran.err


# -- item 6: pyxis imports the image once per attempt --------------------------------------
SRUN_LOG = 'printf "%s\\n" "$*" >>"$SRUN_LOG"\n'


def _pyxis(tmp_path: Path) -> str:
    container = {"runtime": "pyxis", "image": "/shared/images/olmo.sqsh"}
    return _profile(tmp_path, "h100", container=container, python_env={"provided_by": "image"})


@pytest.mark.parametrize(("restart", "name"), [(None, "olmoctl-4242-0"), ("2", "olmoctl-4242-2")])
def test_pyxis_steps_share_one_named_container(
    box: Sandbox, tmp_path: Path, restart: str | None, name: str
) -> None:
    srun = box.bin / "srun"
    srun.write_text("#!/bin/bash\n" + SRUN_LOG + srun.read_text().removeprefix("#!/bin/bash\n"))
    log = tmp_path / "srun.log"
    env = {"SRUN_LOG": str(log)} | ({"SLURM_RESTART_COUNT": restart} if restart else {})
    ran = box.run(_render("-c", _pyxis(tmp_path)), env=env)
    assert ran.code == 0, ran.err
    steps = log.read_text().splitlines()
    assert len(steps) == 2 and "burnin" in steps[0] and "submitit" in steps[1], steps
    for step in steps:  # the burn-in step imports on every node, training reuses it
        assert f"--container-name={name} " in step
        assert "--container-image=/shared/images/olmo.sqsh " in step


# -- item 8: bubblewrap binds what Singularity binds, and its mount points exist ------------
def _bwrap_lines(text: str) -> list[str]:
    return [line.strip().rstrip(" \\") for line in text.splitlines()]


def test_bwrap_binds_the_host_files_after_the_image(box: Sandbox) -> None:
    lines = _bwrap_lines(_render("-c", "dev-container"))
    for start in [i for i, line in enumerate(lines) if line.startswith('--ro-bind "/" /')]:
        after = lines[start + 3 : start + 3 + len(HOST_FILES) + 1]
        assert after == [*(f"--ro-bind-try {f} {f}" for f in HOST_FILES), after[-1]]
        assert after[-1].startswith('--bind "$OLMOCTL_RUN_DIR"')  # the profile's binds after
    assert sum(line == "--ro-bind-try /etc/hosts /etc/hosts" for line in lines) == 2
    assert "olmoctl_mount_point" not in "\n".join(lines)  # image "/": the host's own paths


def _rootfs(tmp_path: Path, *points: str) -> Path:
    root = tmp_path / "rootfs"
    for p in points:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).touch()
    return root


def _bwrap_profile(tmp_path: Path, root: Path, binds: list[str]) -> str:
    container = {"runtime": "bwrap", "image": str(root), "binds": binds}
    return _profile(tmp_path, "dev-container", container=container)


@pytest.mark.parametrize("missing", ["etc/hosts", "etc/group", "data"])
def test_a_missing_mount_point_is_one_line_before_any_rank(
    box: Sandbox, tmp_path: Path, missing: str
) -> None:
    points = [f.lstrip("/") for f in HOST_FILES] + ["data"]
    root = _rootfs(tmp_path, *(p for p in points if p != missing))
    prof = _bwrap_profile(tmp_path, root, ["/data:/data:ro", "$OLMOCTL_RUN_DIR", "/x:/tmp/x"])
    ran = box.run(_render("-c", prof))
    assert ran.code == 1
    assert ran.err.strip().splitlines() == [
        f"olmoctl: container.image {root} has no /{missing} to bind onto: bubblewrap cannot "
        "create it in a read-only image; create it in the image (mkdir -p or touch)"
    ]
    assert not ran.python_calls  # neither the burn-in nor the training step started


def test_an_image_that_is_not_there_is_one_line(box: Sandbox, tmp_path: Path) -> None:
    root = tmp_path / "no-such-rootfs"
    ran = box.run(_render("-c", _bwrap_profile(tmp_path, root, [])))
    assert ran.code == 1 and not ran.python_calls
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and f"container.image {root} is not a directory on " in lines[0]


def test_an_image_with_every_mount_point_runs(box: Sandbox, tmp_path: Path) -> None:
    root = _rootfs(tmp_path, *(f.lstrip("/") for f in HOST_FILES), "data/")
    run_dir = tmp_path / "runs" / "tiny-dev-container"
    (root / str(run_dir).lstrip("/")).mkdir(parents=True)
    # /tmp/x: under bwrap's own tmpfs, made there by bwrap; not looked for in the image
    prof = _bwrap_profile(tmp_path, root, ["/data:/data:ro", "$OLMOCTL_RUN_DIR", "/x:/tmp/x"])
    ran = box.run(_render("-c", prof))
    assert ran.code == 0, ran.err
    assert len(ran.python_calls) == 2


# -- item 9: each shipped profile's script holds what its cited reference requires ---------
# (profile, a line the rendered script must hold, the line it must come before or None, source)
GUARD = "if ! type module >/dev/null 2>&1; then"
FRONTIER_LOADS = (
    "module load PrgEnv-gnu/8.7.0 cpe/26.03 rocm/7.1.1 rccl-net-plugin craype-accel-amd-gfx90a"
)
REQUIRED = [
    # LUMI user guide, docs/runjobs/scheduled-jobs/lumig-job.md: its batch scripts start
    # `#!/bin/bash -l` so that `module` is defined in the job; the profile loads modules.
    ("lumi", GUARD, 'module use "/appl/local/laifs/modules"', "LUMI lumig-job.md"),
    ("lumi", 'olmoctl_module_init="/etc/profile"', None, "LUMI lumig-job.md (bash -l)"),
    # OLCF pytorch_frontier.rst, "Batch Script": `module load ...` inside the batch script.
    ("frontier", GUARD, FRONTIER_LOADS, "GUIDE's batch script"),
    # Apptainer user docs, "Bind Paths and Mounts": /etc/hosts a system-defined bind path,
    # /etc/resolv.conf, /etc/group and /etc/passwd mounted into every container.
    *(("dev-container", f"--ro-bind-try {f} {f}", None, "APPT Bind Paths") for f in HOST_FILES),
]


@pytest.mark.parametrize(("cluster", "line", "before", "source"), REQUIRED)
def test_each_cited_setting_is_in_the_script(
    user_env: Path, cluster: str, line: str, before: str | None, source: str
) -> None:
    lines = _bwrap_lines(_render("-c", cluster, "-o", "cluster.account=p1"))
    assert line in lines, source
    if before is not None:
        assert lines.index(line) < lines.index(before), source


def test_shipped_profiles_that_load_modules_say_where_module_comes_from() -> None:
    """A profile that loads modules relies on module_init; its comment or the default is
    docs/clusters.md's ("module in a batch job")."""
    for path in sorted((REPO / "clusters").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        loads = data.get("modules") or data.get("module_use")
        loads = loads or (data.get("python_env") or {}).get("modules")
        if loads:
            assert re.search(r"module_init", path.read_text()), path.name
