"""Property: no input, whatever field, file, flag or environment variable it arrives by, makes
a rendered script run a command. Hostile strings go into every string field of the cluster
profile and recipe schemas (enumerated from the pydantic models, so a new field is covered
without touching this file), into -o overrides, run names, sweep grid values and the
environment variables the renderer reads; every input is either refused (exit 2, one line)
or rendered into a script that, run under bash with stubs that execute their command
(shell_stubs.py), never creates the marker file.

Fast and reproducible: derandomized, no example database, a modest number of examples.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.conftest import REPO
from tests.unit.shell_stubs import (
    Sandbox,
    olmoctl,
    refused_cleanly,
    restore_env,
    sandbox_home,
    set_env,
)

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Pieces of hostile strings. `pwn` is a stub that creates the marker; `touch pwned` creates
# the other marker in the script's working directory.
FRAGMENTS = [
    "$(pwn)", "`pwn`", ";pwn;", "\npwn\n", "\rpwn", "|pwn", "&pwn&", "&&pwn", "||pwn",
    ";touch pwned;", "\ntouch pwned\n#", "'", '"', "\\", "$", "${X@P}", "${D}${P}", "$[1+1]",
    "$((1+1))", "${!X}", "$X", "${X}", "$D$P", "(pwn)", "{user}", "{account}", "~", "#",
    " ", "\t", "\x00", "\x1b[0m", "é", "\u2028", "\U0001f4a5", "a" * 300, "x" * 5000, "%j",
    ",", "=", "--", "-", "/", ":", "[", "]", "{", "}", "*", "?", "<(pwn)", ">pwned", "!",
]  # fmt: skip
HOSTILE = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), min_size=1, max_size=5
).map("".join)
NO_NUL = HOSTILE.map(lambda s: s.replace("\x00", ""))  # what an environment can hold
ENV_NAMES = ["D", "P", "X", "Y"]  # values of these may refer to one another


def _strip(t: Any) -> Any:
    return typing.get_args(t)[0] if typing.get_origin(t) is typing.Annotated else t


def _kind(t: Any) -> str | None:
    """'str', 'list' or 'dict' for the string-holding annotations, else None."""
    t = _strip(t)
    if t is str:
        return "str"
    origin, args = typing.get_origin(t), [_strip(a) for a in typing.get_args(t)]
    if origin is list and args == [str]:
        return "list"
    if origin is dict and args == [str, str]:
        return "dict"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        kinds = {_kind(a) for a in args} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    return None


def string_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """Every string field of `model` and its sub-models: (dotted path, kind)."""
    from olmoctl.schemas.errors import submodel

    out = []
    for name, field in model.model_fields.items():
        sub = submodel(field.annotation)
        if sub is not None:
            out += string_fields(sub, f"{prefix}{name}.")
        elif (kind := _kind(field.annotation)) is not None:
            out.append((f"{prefix}{name}", kind))
    return out


def _cluster_fields() -> list[tuple[str, str]]:
    from olmoctl.schemas import ClusterProfile

    return string_fields(ClusterProfile)


def _recipe_fields() -> list[tuple[str, str]]:
    from olmoctl.schemas import Recipe

    return string_fields(Recipe)


def test_the_field_lists_cover_the_schemas() -> None:
    cluster = dict(_cluster_fields())
    for key in ("name", "python", "runs_root", "env", "modules", "container.binds", "ssh.host"):
        assert key in cluster, key
    assert {"name", "description", "data.paths"} <= set(dict(_recipe_fields()))


@pytest.fixture
def box(tmp_path: Path, user_env: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return sandbox_home(tmp_path, monkeypatch)


def _base_cluster(box: Sandbox) -> dict[str, Any]:
    """dev.yaml with an account, a container and its runs under the sandbox."""
    data = yaml.safe_load((REPO / "clusters" / "dev.yaml").read_text())
    data.update(
        account="p1",
        runs_root=f"{box.root}/runs/{{account}}/{{user}}",
        container={"image": "/img/{user}.sif", "binds": ["/home/{user}", "$HOME:/h"]},
        env={"OMP_NUM_THREADS": "$SLURM_CPUS_PER_TASK", "D": "d", "P": "p"},
    )
    return data


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *heads, last = path.split(".")
    for h in heads:
        data = data.setdefault(h, {}) if isinstance(data.get(h), dict | None) else data[h]
    data[last] = value


def _put(data: dict[str, Any], path: str, kind: str, value: str, box: Sandbox) -> None:
    if path.startswith("ssh."):
        data.setdefault("ssh", {"host": "login.example"})
    if path == "runs_root":  # keep whatever mkdir -p creates inside the sandbox
        value = f"{box.root}/runs/{value}"
    held: Any = {"str": value, "list": [value], "dict": {"Y": value}}[kind]
    _set(data, path, held)


def _check(box: Sandbox, *args: str) -> None:
    """Render; refused cleanly, or the script runs no injected command."""
    res = olmoctl("render", *args)
    if res.code != 0:
        assert refused_cleanly(res), (args, res.code, res.err)
        return
    ran = box.run(res.out)
    assert not ran.pwned, (args, res.out)


def _write(box: Sandbox, name: str, data: dict[str, Any]) -> str:
    path = box.root / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def _no_dotdot(value: str) -> bool:
    return ".." not in value


@SETTINGS
@given(field=st.sampled_from(_cluster_fields()), value=HOSTILE, plain=st.booleans())
def test_cluster_profile_fields(box: Sandbox, field: tuple[str, str], value: str, plain: bool):
    path, kind = field
    assume(_no_dotdot(value))
    data = _base_cluster(box)
    _put(data, path, kind, value, box)
    prof = _write(box, "cluster.yaml", data)
    _check(box, "tiny", "-c", prof, *(["--plain"] if plain else []))


@SETTINGS
@given(key=NO_NUL.filter(lambda s: "=" not in s), value=st.sampled_from(["1", "$X"]))
def test_env_names(box: Sandbox, key: str, value: str) -> None:
    data = _base_cluster(box)
    data["env"] = {key: value, "X": "x"}
    _check(box, "tiny", "-c", _write(box, "cluster.yaml", data))


@SETTINGS
@given(env=st.dictionaries(st.sampled_from(ENV_NAMES), HOSTILE, min_size=1, max_size=4))
def test_env_values_that_refer_to_one_another(box: Sandbox, env: dict[str, str]) -> None:
    """Item 3's shape: pieces spread over several variables, each referring to others."""
    data = _base_cluster(box)
    data["env"] = {**{n: "v" for n in ENV_NAMES}, **env}
    data["container"]["binds"] = ["$X:/x", "${Y}"]
    data["container"]["exec_args"] = ["--env=$P"]
    _check(box, "tiny", "-c", _write(box, "cluster.yaml", data))


@SETTINGS
@given(field=st.sampled_from(_recipe_fields()), value=HOSTILE)
def test_recipe_fields(box: Sandbox, field: tuple[str, str], value: str) -> None:
    path, kind = field
    data = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    _put(data, path, kind, value, box)
    cluster = _write(box, "cluster.yaml", _base_cluster(box))
    _check(box, _write(box, "recipe.yaml", data), "-c", cluster)


_OVERRIDE_KEYS = st.sampled_from(
    [f"cluster.{p}" for p, k in _cluster_fields() if k == "str" and p != "runs_root"]
    + [f"cluster.{p}.Y" for p, k in _cluster_fields() if k == "dict"]
    + [p for p, k in _recipe_fields() if k == "str"]
)


@SETTINGS
@given(key=_OVERRIDE_KEYS, value=HOSTILE, name=st.one_of(st.none(), HOSTILE))
def test_overrides_and_run_names(box: Sandbox, key: str, value: str, name: str | None):
    cluster = _write(box, "cluster.yaml", _base_cluster(box))
    args = ["tiny", "-c", cluster, "-o", f"{key}={value}"]
    _check(box, *args, *(["--name", name] if name is not None else []))


@SETTINGS
@given(override=HOSTILE)
def test_raw_overrides(box: Sandbox, override: str) -> None:
    _check(box, "tiny", "-c", _write(box, "cluster.yaml", _base_cluster(box)), "-o", override)


_ENV_VARS = ["USER", "LOGNAME", "OLMOCTL_ACCOUNT", "SBATCH_ACCOUNT", "HOME"]


@SETTINGS
@given(values=st.dictionaries(st.sampled_from(_ENV_VARS), NO_NUL, min_size=1))
def test_environment_variables(box: Sandbox, values: dict[str, str]) -> None:
    if "HOME" in values:  # `~` roots are created under HOME: keep it in the sandbox
        assume(_no_dotdot(values["HOME"]))
        values["HOME"] = f"{box.root}/home/{values['HOME']}"
    data = _base_cluster(box)
    data["account"] = None  # taken from OLMOCTL_ACCOUNT / SBATCH_ACCOUNT when set
    data["runs_root"] = "~/runs/{user}"
    saved = set_env(values)
    try:
        _check(box, "tiny", "-c", _write(box, "cluster.yaml", data))
    finally:
        restore_env(saved)


@SETTINGS
@given(
    key=st.sampled_from(["name", "description", "cluster.python", "cluster.env.Y", "data.paths"]),
    values=st.lists(HOSTILE.filter(lambda s: "," not in s), min_size=1, max_size=3),
    name=st.one_of(st.none(), HOSTILE),
)
def test_sweep_points_and_array_script(
    box: Sandbox, key: str, values: list[str], name: str | None
) -> None:
    """Every point's script and the job-array script that dispatches them."""
    from olmoctl.core import sweep
    from olmoctl.errors import UsageError
    from olmoctl.store import Store

    cluster = _write(box, "cluster.yaml", _base_cluster(box))
    res = olmoctl(
        "sweep", "tiny", "-c", cluster, "--grid", f"{key}={','.join(values)}", "--dry-run",
        *(["--name", name] if name is not None else []),
    )  # fmt: skip
    if res.code != 0:
        assert refused_cleanly(res), res.err
        return
    d = sweep.definition(
        recipe="tiny", cluster=cluster, grid=[f"{key}={','.join(values)}"], name=name
    )
    try:
        p = sweep.plan(Store(), d)
    except UsageError:  # pragma: no cover - the CLI accepted the same definition
        raise AssertionError("plan refused what the dry run accepted") from None
    from olmoctl.core.launch.render import render

    for point in p.points:
        assert not box.run(render(point.spec)).pwned
    script = sweep.render_array(
        p.name, p.points, [1] * len(p.points), max_parallel=1, out_dir=f"{box.root}/s"
    )
    assert not box.run(script, env={"SLURM_ARRAY_TASK_ID": "0"}).pwned
