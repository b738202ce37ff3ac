"""Issue 22 item 1: how a rank gets its Python. A profile says it (python_env, or an absolute
`python`); the batch script sets it up before the burn-in, training and doctor steps, and
the ranks run the activated env's python; `launch`/`render` refuse a Slurm profile whose
ranks would run a bare `python` with nothing set up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from olmoctl.backends.jobfiles import preflight_command
from olmoctl.core.launch import specs
from olmoctl.core.launch.render import render
from olmoctl.errors import UsageError
from olmoctl.schemas import ClusterProfile
from olmoctl.schemas.errors import validate
from tests.conftest import REPO
from tests.unit.shell_stubs import Sandbox, olmoctl, refused_cleanly, sandbox_home


@pytest.fixture
def box(tmp_path: Path, user_env: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return sandbox_home(tmp_path, monkeypatch)


def _profile(tmp_path: Path, base: str, drop: tuple[str, ...] = (), **changes: object) -> str:
    """A copy of a shipped profile without `drop`, with `changes`, runs under tmp_path."""
    data = yaml.safe_load((REPO / "clusters" / f"{base}.yaml").read_text())
    for key in drop:
        data.pop(key, None)
    data.update(runs_root=str(tmp_path / "runs"), **changes)
    path = tmp_path / f"{base}-mine.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _cluster(base: str, **changes: object) -> None:
    data = yaml.safe_load((REPO / "clusters" / f"{base}.yaml").read_text())
    validate(ClusterProfile, {**data, **changes}, f"{base}.yaml")


# -- the refusal ------------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", ["render", "launch"])
@pytest.mark.parametrize("base", ["h100", "frontier", "lumi", "dev"])
def test_a_bare_python_with_nothing_set_up_is_refused(
    box: Sandbox, tmp_path: Path, cmd: str, base: str
) -> None:
    path = _profile(tmp_path, base, drop=("python_env",))
    res = olmoctl(cmd, "tiny", "--cluster", path, "-o", "cluster.account=p1")
    assert refused_cleanly(res), (res.code, res.err)
    assert "python: its ranks would run a bare 'python' with nothing set up" in res.err
    assert "python_env" in res.err and "absolute interpreter" in res.err
    assert not (tmp_path / "runs").exists()  # nothing half-made


def test_force_does_not_skip_it(box: Sandbox, tmp_path: Path) -> None:
    path = _profile(tmp_path, "h100", drop=("python_env",))
    assert refused_cleanly(olmoctl("render", "tiny", "--cluster", path, "--force"))


def test_an_absolute_interpreter_is_a_way(box: Sandbox, tmp_path: Path) -> None:
    path = _profile(tmp_path, "h100", drop=("python_env",), python="/opt/env/bin/python")
    res = olmoctl("render", "tiny", "--cluster", path)
    assert res.code == 0, res.err
    assert "  /opt/env/bin/python -u -m olmoctl.train.burnin " in res.out


def test_local_runs_need_no_python_env(box: Sandbox) -> None:
    assert olmoctl("render", "tiny", "--cluster", "local").code == 0


# -- the schema -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("base", "python_env", "expected"),
    [
        ("h100", {}, "sets nothing up"),
        ("h100", {"conda": "a", "venv": "/v"}, "give one of conda, venv and provided_by"),
        ("h100", {"venv": "/v", "stage_tarball": "/t.tgz"}, "set conda too"),
        ("h100", {"provided_by": "submitter", "modules": ["x"]}, "drop modules"),
        ("h100", {"provided_by": "image"}, "the profile has no container"),
        ("lumi", {"conda": "/env"}, "set python to the interpreter inside the image"),
        ("h100", {"conda": "$(touch pwned)"}, "outside a $NAME or ${NAME} reference"),
        ("h100", {"modules": ["a b"]}, "one word"),
    ],
)  # fmt: skip
def test_python_env_is_validated(base: str, python_env: dict, expected: str) -> None:
    with pytest.raises(UsageError, match=re.escape(expected)):
        _cluster(base, python_env=python_env)


# -- rendered and run -------------------------------------------------------------------------
def _fake_env(root: Path, activate_line: str) -> Path:
    """A directory with bin/python (logs 'env-python ARGS' to $STUB_LOG) and, where
    `activate_line` says so, an activate script that puts its bin/ first on PATH."""
    (root / "bin").mkdir(parents=True)
    py = root / "bin" / "python"
    py.write_text('#!/bin/bash\nprintf "env-python %s\\n" "$*" >>"$STUB_LOG"\n')
    py.chmod(0o755)
    (root / "bin" / "activate").write_text(activate_line.format(root=root))
    return root


def _lines_before_srun(script: str) -> list[str]:
    """The script's lines up to the first srun (the burn-in step's, or training's)."""
    lines = script.splitlines()
    return lines[: next(i for i, ln in enumerate(lines) if ln.startswith("srun "))]


def test_a_venv_is_activated_and_every_step_runs_its_python(box: Sandbox, tmp_path: Path) -> None:
    venv = _fake_env(tmp_path / "venv", 'PATH="{root}/bin:$PATH"\nexport PATH\nunset NOPE_X\n')
    path = _profile(tmp_path, "h100", python_env={"venv": str(venv)})
    res = olmoctl("render", "tiny", "--cluster", path)
    assert res.code == 0, res.err
    assert f'source "{venv}/bin/activate"' in _lines_before_srun(res.out)
    ran = box.run(res.out)
    # The burn-in and the training step, both through the venv's python (none bare).
    assert [c.split()[:4] for c in ran.python_calls] == [
        ["env-python", "-u", "-m", "olmoctl.train.burnin"],
        ["env-python", "-u", "-m", "submitit.core._submit"],
    ], (ran.python_calls, ran.err)


def test_frontier_loads_miniforge_and_activates_its_conda_env(box: Sandbox, tmp_path: Path) -> None:
    env = _fake_env(tmp_path / "conda-env", "")
    # `source activate ENV` finds conda's `activate` on PATH (miniforge3's module puts it there).
    activate = box.bin / "activate"
    activate.write_text('PATH="$1/bin:$PATH"\nexport PATH\n')
    path = _profile(
        tmp_path, "frontier", python_env={"modules": ["miniforge3"], "conda": str(env)},
        account="p1",
    )  # fmt: skip
    res = olmoctl("render", "tiny", "--cluster", path)
    assert res.code == 0, res.err
    head = _lines_before_srun(res.out)
    assert head.index("module load miniforge3") < head.index(f'source activate "{env}"')
    ran = box.run(res.out)
    assert ran.python_calls and all(c.startswith("env-python ") for c in ran.python_calls), (
        ran.python_calls,
        ran.err,
    )


@pytest.mark.parametrize("key", ["venv", "conda"])
def test_hostile_env_paths_stay_data(box: Sandbox, tmp_path: Path, key: str) -> None:
    value = "/v; touch ./pwned; (pwn) | pwn & ${USER}"
    python_env = {key: value, "modules": ["m"]}
    path = _profile(tmp_path, "h100", python_env=python_env)
    res = olmoctl("render", "tiny", "--cluster", path)
    assert res.code == 0, res.err
    box.run(res.out)
    assert not box.pwned()


def test_doctor_script_sets_the_env_up_too(user_env: Path) -> None:
    spec = specs.resolve("tiny", "h100")
    script = render(spec, task_command=preflight_command(spec))
    before = script.split("-m olmoctl.train.burnin.preflight", 1)[0]
    assert 'source "/shared/alice/olmoctl/venv/bin/activate"' in before


def test_staging_on_node_local_nvme_renders_olcfs_steps(user_env: Path) -> None:
    tarball = "/lustre/orion/{account}/proj-shared/{user}/envs/olmoctl.tar.gz"
    over = ["cluster.account=p1", f"cluster.python_env.stage_tarball={tarball}"]
    script = render(specs.resolve("tiny", "frontier", overrides=over))
    lines = _lines_before_srun(script.replace("srun --nodes=", "SRUN --nodes="))
    assert "#SBATCH --constraint=nvme" in lines
    assert (
        'sbcast --force --preserve "/lustre/orion/p1/proj-shared/alice/envs/olmoctl.tar.gz" '
        '"$olmoctl_env.tar.gz"'
    ) in lines
    assert 'source activate "$olmoctl_env"' in lines  # the staged copy, not the Lustre env
    assert not any('/envs/olmoctl"' in ln for ln in lines)
    plain = render(specs.resolve("tiny", "frontier", overrides=["cluster.account=p1"]))
    assert "--constraint=nvme" not in plain and "sbcast" not in plain


def test_dev_profiles_declare_the_submitters_env_and_render_no_command() -> None:
    """The integration tests' profiles: their script gains comments only."""
    for name in ("dev", "dev-container"):
        data = yaml.safe_load((REPO / "clusters" / f"{name}.yaml").read_text())
        assert data["python_env"] == {"provided_by": "submitter"}
        assert data["python"] == "python"
