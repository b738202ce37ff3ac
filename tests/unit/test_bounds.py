"""Numbers and sizes (issue 14, items 9 and 13): every count, size, time and float the user
gives is range-checked where it enters (schemas/bounds.py, cli/options.bounded); refusals are
one line naming the key and the valid range, exit 2."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from olmoctl.core.launch import catalog
from olmoctl.core.launch.overrides import _field_annotation
from olmoctl.core.launch.yamlio import load_yaml_mapping
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.bounds import INT64_MAX, STR_MAX, time_problem
from olmoctl.schemas.errors import model_paths
from tests.unit.test_bad_input import _one_line_error


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # item 13, as reported
        (["-o", "optim.lr=inf"], "optim.lr: Input should be a finite number"),
        (["-o", "optim.lr=1e309"], "optim.lr: Input should be a finite number"),
        (["-o", "optim.lr=nan"], "optim.lr: Input should be a finite number"),
        (["-o", "optim.grad_clip=inf"], "optim.grad_clip: Input should be a finite number"),
        (["-o", "train.heartbeat_interval_s=inf"], "train.heartbeat_interval_s"),
        (["-o", "model.rope_theta=1e309"], "model.rope_theta: Input should be a finite"),
        (["-o", "optim.betas=[.nan,0.9]"], "optim.betas.0: Input should be a finite number"),
        (["-o", "optim.betas=[-5,7]"], "optim.betas.0: Input should be greater than or equal to 0"),
        (["-o", "optim.betas=[0.9,1]"], "optim.betas.1: Input should be less than 1"),
        (["-o", f"train.seed={2**64}"], "train.seed: Input should be less than or equal to"),
        (["-o", f"train.max_steps={10**30}"], "train.max_steps: Input should be less than or"),
        (["-o", "cluster.energy.node_power_kw=inf"], "cluster.energy.node_power_kw"),
        (["-o", "cluster.peak_tflops_bf16=inf"], "cluster.peak_tflops_bf16: Input should be a"),
        (["-t", "00:99:99"], "--time '00:99:99' has minutes or seconds above 59"),
        (["-t", "1-25:00:00"], "has hours above 23 after a day count"),
        (["-t", "00:00:00"], "is zero"),
        (["-o", "cluster.max_time=00:99:00"], "cluster.max_time: '00:99:00' has minutes"),
        (["-o", "cluster.default_time=9999-00:00:00"], "is not a Slurm time"),
        # and their neighbours
        (["-o", "optim.lr=2"], "optim.lr: Input should be less than or equal to 1"),
        (["-o", "optim.eps=0"], "optim.eps: Input should be greater than 0"),
        (["-o", "model.layer_norm_eps=-inf"], "model.layer_norm_eps"),
        (["-o", "schedule.final_lr_ratio=nan"], "schedule.final_lr_ratio"),
        (["-o", f"train.max_tokens={10**19}"], "train.max_tokens"),
        (["-o", "train.global_batch_size=99999999999"], "train.global_batch_size"),
        (["-o", "checkpoint.interval_steps=0"], "checkpoint.interval_steps"),
        (["-o", "cluster.signal_before_s=70000"], "cluster.signal_before_s"),
        (["-o", "cluster.hang_timeout_s=-1"], "cluster.hang_timeout_s"),
        (["-o", "cluster.energy.pue=nan"], "cluster.energy.pue"),
        (["-o", "cluster.ssh.port=0"], "cluster.ssh"),
        (["-o", "cluster.gpus_per_node=1e3"], "cluster.gpus_per_node"),
    ],
)
def test_numbers_refused(cli, args: list[str], expected: str) -> None:
    line = _one_line_error(cli("render", "tiny", "-c", "dev", *args))
    assert expected in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["render", "tiny", "-c", "dev", "-N", "0"], "--nodes must be at least 1, got 0"),
        (["render", "tiny", "-c", "dev", "-N", "2000000"], "--nodes must be at most 1000000"),
        (["launch", "tiny", "-c", "dev", "-N", "-3"], "--nodes must be at least 1, got -3"),
        (["plan", "tiny", "-c", "dev", "-N", "0"], "--nodes must be at least 1, got 0"),
        (["resume", "r", "--nodes", "0"], "--nodes must be at least 1, got 0"),
        (["resume", "r", "-N", "-1"], "--nodes must be at least 1, got -1"),
        (["watch", "--interval", "0"], "--interval must be above 0, got 0"),
        (["watch", "--interval", "-1"], "--interval must be above 0, got -1"),
        (["watch", "--interval", "nan"], "--interval must be a finite number, got nan"),
        (["watch", "--interval", "inf"], "--interval must be a finite number, got inf"),
        (["watch", "--interval", "1e9"], "--interval must be at most 86400"),
        (["watch", "--max-retries", "-1"], "--max-retries must be at least 0, got -1"),
        (["watch", "--backoff", "-5"], "--backoff must be at least 0, got -5"),
        (["watch", "--backoff", "nan"], "--backoff must be a finite number"),
        (["logs", "r", "--rank", "-1"], "--rank must be at least 0, got -1"),
        (["logs", "r", "--attempt", "0"], "--attempt must be at least 1, got 0"),
        (["show", "r", "--script", "--attempt", "-2"], "--attempt must be at least 1"),
        (["render", "--diff", "r", "--attempt", "0"], "--attempt must be at least 1"),
        (["plan", "tiny", "-c", "dev", "--mfu", "inf"], "--mfu must be in (0, 1], got inf"),
        (["plan", "tiny", "-c", "dev", "--seeds", "0"], "--seeds must be at least 2, got 0"),
        (["plan", "tiny", "-c", "dev", "--seeds", "99999"], "--seeds must be at most 10000"),
        (["sweep", "tiny", "-c", "dev", "-N", "0"], "--nodes must be at least 1, got 0"),
        (["sweep", "tiny", "-c", "dev", "-P", "0"], "--max-parallel must be at least 1"),
        (["sweep", "tiny", "-c", "dev", "--random", "0"], "--random must be at least 1"),
        (["sweep", "tiny", "-c", "dev", "--random", "10001"], "--random must be at most 10000"),
        (["sweep", "tiny", "-c", "dev", "--seed", "-1"], "--seed must be at least 0"),
        (["sweep", "tiny", "-c", "dev", "--seed", str(2**64)], "--seed must be at most"),
        (
            ["sweep", "tiny", "-c", "dev", "--random", "2", "--sample", "optim.lr=uniform:1:inf"],
            "LOW and HIGH must be finite numbers",
        ),
        (
            ["sweep", "tiny", "-c", "dev", "--random", "2", "--sample", "optim.lr=uniform:nan:1"],
            "LOW and HIGH must be finite numbers",
        ),
        (
            ["sweep", "tiny", "-c", "dev", "--random", "2", "--sample", "train.seed=int:0:1e400"],
            "expected int:LOW:HIGH with integers",
        ),
        (["status", "--since", "-5h"], "--since '-5h': give a duration above 0"),
        (["status", "--since", "nanh"], "--since 'nanh': give a duration above 0"),
        (["status", "--since", "1e400d"], "--since '1e400d': give a duration above 0"),
        (["status", "--since", "0m"], "--since '0m': give a duration above 0"),
    ],
)
def test_cli_ranges(cli, args: list[str], expected: str) -> None:
    line = _one_line_error(cli(*args))
    assert expected in line


def _recipe_file(tmp_path: Path, text: str) -> str:
    base = catalog.find("recipes", "tiny").path.read_text()
    path = tmp_path / "mine.yaml"
    path.write_text(base + text)
    return str(path)


def test_yaml_true_is_not_a_count(cli, tmp_path: Path) -> None:
    data = load_yaml_mapping(catalog.find("recipes", "tiny").path)
    data["model"]["n_layers"] = True
    path = tmp_path / "r.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    line = _one_line_error(cli("render", str(path), "-c", "dev"))
    assert "model.n_layers: expected a number, got true" in line


def test_duplicate_yaml_key_names_file_and_line(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: mine\nvendor: cpu\nruns_root: /tmp/r\nvendor: nvidia\n")
    line = _one_line_error(cli("render", "tiny", "-c", str(path)))
    assert f"{path}:4: malformed YAML: duplicate key 'vendor' (first on line 2)" in line


def test_duplicate_key_in_an_override(cli) -> None:
    line = _one_line_error(cli("render", "tiny", "-c", "dev", "-o", "cluster.env={A: 1, A: 2}"))
    assert "duplicate key 'A'" in line


def test_huge_recipe_name_refused(cli, tmp_path: Path) -> None:
    data = load_yaml_mapping(catalog.find("recipes", "tiny").path)
    data["name"] = "x" * 100_000
    path = tmp_path / "r.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    line = _one_line_error(cli("render", str(path), "-c", "dev"))
    assert "name" in line  # (how much of the value is quoted: schemas/errors.py)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("00:00:01", True),
        ("999:59:59", True),
        ("1-23:59:59", True),
        ("365-00:00:00", True),
        ("366-00:00:00", False),
        ("00:60:00", False),
        ("00:00:60", False),
        ("2-24:00:00", False),
        ("00:00:00", False),
        ("1:2:3", False),
        ("", False),
    ],
)
def test_slurm_time(value: str, ok: bool) -> None:
    assert (time_problem(value) is None) == ok


# ---- the generalization: walk every field of the schemas ------------------------------


def _base(model: type[BaseModel]) -> dict[str, Any]:
    if model is Recipe:
        return load_yaml_mapping(catalog.find("recipes", "tiny").path)
    data = load_yaml_mapping(catalog.find("clusters", "lumi").path)
    data["ssh"] = {"host": "login.example.org"}  # so ssh.* fields are reached too
    data["account"] = "project_1"
    return data


def _leaf_kinds(annotation: Any) -> set[type]:
    """int/float/str found in a field's annotation (through Optional, tuple, list...)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_kinds(typing.get_args(annotation)[0])
    if annotation in (int, float, str):
        return {annotation}
    out: set[type] = set()
    for arg in typing.get_args(annotation):
        if origin is typing.Literal:
            continue
        out |= _leaf_kinds(arg)
    return out


def _fields() -> list[tuple[type[BaseModel], str, Any]]:
    out = []
    for model in (Recipe, ClusterProfile):
        for path in model_paths(model):
            found = _field_annotation(model, path.split("."))
            assert found is not None, path
            out.append((model, path, found[0]))
    return out


def _with(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(data)
    node = data
    *heads, last = path.split(".")
    for head in heads:
        node = node.setdefault(head, {})
        if isinstance(node, list):  # a list of models (cluster.time_limits): its first item
            node = node[0]
    node[last] = value
    return data


def _shaped(annotation: Any, value: Any) -> Any:
    """`value` in the container the field holds (a tuple/list field gets it as an item)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _shaped(inner[0], value)
    if origin is tuple:
        return [value] * len(typing.get_args(annotation))
    if origin is list:
        return [value]
    if origin is dict:
        return {"K": value}
    return value


NUMERIC = [(m, p, a) for m, p, a in _fields() if _leaf_kinds(a) & {int, float}]
STRINGS = [(m, p, a) for m, p, a in _fields() if _leaf_kinds(a) == {str}]


def test_the_walk_sees_the_fields() -> None:
    paths = {p for _, p, _ in NUMERIC}
    assert {"optim.lr", "optim.betas", "train.seed", "energy.pue", "ssh.port"} <= paths
    assert len(NUMERIC) > 40 and len(STRINGS) > 15


@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, math.nan, "1e309", "inf", "nan", True, False, 2**63, -(2**63) - 1]
)
@pytest.mark.parametrize(("model", "path", "annotation"), NUMERIC, ids=[p for _, p, _ in NUMERIC])
def test_every_number_refuses_inf_nan_bool_and_overflow(model, path, annotation, bad) -> None:
    model.model_validate(_base(model))  # the base is valid
    with pytest.raises(ValidationError):
        model.model_validate(_with(_base(model), path, _shaped(annotation, bad)))


@pytest.mark.parametrize(("model", "path", "annotation"), STRINGS, ids=[p for _, p, _ in STRINGS])
def test_every_string_is_length_bounded(model, path, annotation) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(_with(_base(model), path, _shaped(annotation, "a" * (STR_MAX + 1))))


def test_recorded_int64_limit() -> None:
    assert INT64_MAX == 2**63 - 1
