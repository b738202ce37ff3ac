"""Numbers are ASCII (issue 26 item 8): Python's int(), float(), str.isdigit() and regex \\d
also read Arabic-Indic or full-width digits as numbers, which Slurm, bash and the job do not.
Every number olmoctl reads from text takes the digits 0-9 only: each numeric option of every
command (enumerated from the click commands, so a new option is covered without touching this
file), every numeric -o field of the schemas (enumerated from the models), times, memory
sizes, --since, sweep samples, and the numbers parsed out of run directories and the
environment. Bad input is exit 2 and one line naming what was wrong.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.conftest import REPO
from tests.unit.shell_stubs import olmoctl, refused_cleanly

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ASCII = "0123456789"
# A decimal digit of any script but ASCII (Unicode category Nd), somewhere among ASCII ones.
OTHER_DIGIT = st.characters(categories=("Nd",), exclude_characters=ASCII)
DIGITS = st.tuples(st.text(ASCII, max_size=2), OTHER_DIGIT, st.text(ASCII, max_size=2)).map("".join)


def test_the_strategy_makes_what_python_calls_numbers() -> None:
    """The premise: each such string is a number to int() and \\d, so only an explicit ASCII
    check can refuse it."""
    import re

    for s in ("\u0661\u0662", "\uff11\uff12", "1\u0663"):
        assert int(s) > 0 and re.fullmatch(r"\d+", s) and not s.isascii()


# -- every numeric option of every command ---------------------------------------------------
def _number_options() -> list[tuple[tuple[str, ...], str]]:
    """(command path, its first long flag) for every int/float option of the CLI."""
    from olmoctl.cli import main

    root = typer.main.get_command(main.app)
    out: list[tuple[tuple[str, ...], str]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        for p in cmd.params:
            kind = getattr(p.type, "base", p.type)  # options.INT/FLOAT wrap click's types
            if isinstance(p, click.Option) and isinstance(kind, click.types._NumberParamTypeBase):
                out.append((path, next(o for o in p.opts if o.startswith("--"))))
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, (*path, name))

    walk(root, ())
    return out


NUMBER_OPTIONS = _number_options()


def test_the_option_list_covers_the_cli() -> None:
    found = {(" ".join(p), f) for p, f in NUMBER_OPTIONS}
    for expected in (
        ("render", "--nodes"),
        ("launch", "--spare-nodes"),
        ("logs", "--rank"),
        ("watch", "--interval"),
        ("sweep", "--max-parallel"),
        ("plan", "--mfu"),
        ("export", "--pad-token-id"),
        ("doctor", "--timeout"),
    ):
        assert expected in found, expected


@SETTINGS
@given(option=st.sampled_from(NUMBER_OPTIONS), digits=DIGITS, frac=st.booleans())
def test_every_number_option_refuses_other_digits(
    user_env: Path, option: tuple[tuple[str, ...], str], digits: str, frac: bool
) -> None:
    path, flag = option
    value = f"{digits}.5" if frac else digits
    res = olmoctl(*path, flag, value)
    assert refused_cleanly(res), (path, flag, value, res.code, res.err)
    assert f"'{flag}'" in res.err and "digits 0-9" in res.err, res.err


def test_ascii_numbers_still_pass(user_env: Path) -> None:
    res = olmoctl("render", "tiny", "-c", "dev", "--nodes", "1", "-o", "cluster.mem=64G")
    assert res.code == 0, res.err
    assert "#SBATCH --mem=64G" in res.out


# -- every numeric field of the schemas, through -o ------------------------------------------
def _strip(t: Any) -> Any:
    return typing.get_args(t)[0] if typing.get_origin(t) is typing.Annotated else t


def _numeric(field: Any) -> str | None:
    """'number', 'pair' (a tuple of floats) or 'text' (a time or size string), else None."""
    from olmoctl.schemas.bounds import SlurmMem, SlurmTime

    checks = {m.func for m in field.metadata if hasattr(m, "func")}
    checks |= {
        m.func
        for a in typing.get_args(field.annotation)
        for m in getattr(a, "__metadata__", ())
        if hasattr(m, "func")
    }
    own = {m.func for t in (SlurmTime, SlurmMem) for m in t.__metadata__}
    if checks & own:
        return "text"
    t = _strip(field.annotation)
    args = [_strip(a) for a in typing.get_args(t) if a is not type(None)]
    if t in (int, float) or (args and all(a in (int, float) for a in args)):
        return "pair" if typing.get_origin(t) is tuple else "number"
    return None


def numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """Every number (and time / size string) of `model` and its sub-models reachable by -o
    (not inside lists: -o cannot name a list item)."""
    from olmoctl.schemas.errors import submodel

    out = []
    for name, field in model.model_fields.items():
        sub = submodel(field.annotation)
        if sub is not None:
            if typing.get_origin(_strip(field.annotation)) is not list:
                out += numeric_fields(sub, f"{prefix}{name}.")
        elif (kind := _numeric(field)) is not None:
            out.append((f"{prefix}{name}", kind))
    return out


def _fields() -> list[tuple[str, str]]:
    from olmoctl.schemas import ClusterProfile, Recipe

    return numeric_fields(Recipe) + [(f"cluster.{k}", v) for k, v in numeric_fields(ClusterProfile)]


FIELDS = _fields()


def test_the_field_list_covers_the_schemas() -> None:
    fields = dict(FIELDS)
    for key in ("train.max_steps", "optim.lr", "optim.betas", "cluster.mem", "cluster.max_time",
                "cluster.min_time", "cluster.ssh.port", "cluster.burnin.fs_mb"):  # fmt: skip
        assert key in fields, key
    assert fields["cluster.mem"] == fields["cluster.default_time"] == "text"


def _value(key: str, kind: str, digits: str) -> str:
    if kind == "pair":
        return f"[{digits}, 0.95]"
    if key.endswith("time"):
        return f"{digits}:00:00"
    return f"{digits}G" if key.endswith("mem") else digits


@SETTINGS
@given(field=st.sampled_from(FIELDS), digits=DIGITS)
def test_every_numeric_field_refuses_other_digits(
    user_env: Path, field: tuple[str, str], digits: str
) -> None:
    key, kind = field
    extra = ["-o", "cluster.ssh.host=login.example"] if key.startswith("cluster.ssh.") else []
    res = olmoctl("render", "tiny", "-c", "dev", *extra, "-o", f"{key}={_value(key, kind, digits)}")
    assert refused_cleanly(res), (key, digits, res.code, res.err)
    assert f": {key}" in res.err, res.err  # named: the refusal is this field's


def test_a_profile_file_with_other_digits_is_refused(user_env: Path, tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "clusters" / "dev.yaml").read_text())
    for key, value in (
        ("mem", "\u0661\u0662G"),
        ("max_time", "\uff11\uff12:00:00"),
        ("time_limits", [{"min_nodes": 1, "max_time": "\u0661:00:00"}]),
    ):
        prof = tmp_path / "c.yaml"
        prof.write_text(yaml.safe_dump({**data, key: value}, allow_unicode=True))
        res = olmoctl("render", "tiny", "-c", str(prof))
        assert refused_cleanly(res) and key in res.err, (key, res.err)


def test_memory_sizes_are_bounded(user_env: Path) -> None:
    """-o cluster.mem was the one size without a range (an int of thousands of digits once
    reached Slurm); now at most a PiB per node, ASCII digits, one suffix."""
    for bad in ("1025T", "9" * 30, "12GB", "-1G", "1.5G", "G"):
        res = olmoctl("render", "tiny", "-c", "dev", "-o", f"cluster.mem={bad}")
        assert refused_cleanly(res) and "cluster.mem" in res.err, (bad, res.err)
    for good in ("0", "1024T", "512000", "64G"):
        res = olmoctl("render", "tiny", "-c", "dev", "-o", f"cluster.mem={good}")
        assert res.code == 0 and f"#SBATCH --mem={good}\n" in res.out, (good, res.err)


# -- the other places numbers are read from text -----------------------------------------------
@SETTINGS
@given(digits=DIGITS, unit=st.sampled_from("smhdw"))
def test_since(user_env: Path, digits: str, unit: str) -> None:
    res = olmoctl("status", "--since", f"{digits}{unit}")
    assert refused_cleanly(res) and "--since" in res.err, res.err


@SETTINGS
@given(digits=DIGITS, command=st.sampled_from(["render", "sweep"]))
def test_time_option(user_env: Path, digits: str, command: str) -> None:
    extra = ["--grid", "optim.lr=1e-3", "--dry-run"] if command == "sweep" else []
    res = olmoctl(command, "tiny", "-c", "dev", "-t", f"{digits}:00:00", *extra)
    assert refused_cleanly(res) and "--time" in res.err, res.err


@SETTINGS
@given(digits=DIGITS, kind=st.sampled_from(["int", "uniform", "loguniform"]))
def test_sweep_samples(user_env: Path, digits: str, kind: str) -> None:
    res = olmoctl("sweep", "tiny", "-c", "dev", "--random", "2", "--dry-run",
                  "--sample", f"train.max_steps={kind}:1:{digits}")  # fmt: skip
    assert refused_cleanly(res) and "--sample" in res.err, res.err


@SETTINGS
@given(digits=DIGITS)
def test_sweep_grid_and_file_values(user_env: Path, tmp_path: Path, digits: str) -> None:
    res = olmoctl("sweep", "tiny", "-c", "dev", "--grid", f"train.max_steps=1,{digits}",
                  "--dry-run")  # fmt: skip
    assert refused_cleanly(res) and "train.max_steps" in res.err, res.err
    f = tmp_path / "s.yaml"
    f.write_text(f"recipe: tiny\ncluster: dev\ngrid:\n  optim.lr: [1e-3]\nnodes: '{digits}'\n")
    res = olmoctl("sweep", "--file", str(f), "--dry-run")
    assert refused_cleanly(res) and "nodes" in res.err, res.err


def test_smtp_port_from_the_environment() -> None:
    from olmoctl.core.supervise import notify
    from olmoctl.errors import UsageError

    # isdigit() took the first two (int() read them as 25); int() raised on the third.
    for port in ("\u0662\u0665", "\uff12\uff15", "0" * 5000 + "25"):
        with pytest.raises(UsageError, match="OLMOCTL_SMTP_PORT"):
            notify.Smtp.from_env({"OLMOCTL_SMTP_HOST": "m", "OLMOCTL_SMTP_PORT": port})
    assert (
        notify.Smtp.from_env({"OLMOCTL_SMTP_HOST": "m", "OLMOCTL_SMTP_PORT": "2525"}).port == 2525
    )


def test_numbers_in_run_directories_are_ascii(tmp_path: Path) -> None:
    """File names and log lines in a run directory are anyone's text: a checkpoint folder,
    a rank's log file, a killed task or a needed size spelled in other digits is not one."""
    from olmoctl.backends import jobfiles
    from olmoctl.backends.files import LOCAL
    from olmoctl.core.track import classify as cl
    from olmoctl.schemas import contract

    assert contract.parse_step_dir("step_00000012") == 12
    assert contract.parse_step_dir("step_\u0660\u0660\u0660\u0660\u0660\u0660\u0661\u0662") is None
    assert contract.parse_step_dir("step_" + "9" * 5000) is None  # int() would raise

    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    for name in ("7-rank0.out", "7-rank\u0661.out", "7-rank\uff12.out"):
        (logs / name).write_text("x\n")
    assert list(jobfiles.slurm_rank_logs(LOCAL, str(tmp_path / "run"), "7")) == [0]
    sub = tmp_path / "run" / jobfiles.SUBMITIT_DIR
    sub.mkdir()
    for name in ("7_0_log.out", "7_\u0661_log.out", "7_x_log.out"):
        (sub / name).write_text("x\n")
    assert list(jobfiles.submitit_rank_logs(LOCAL, str(tmp_path / "run"), "7")) == [0]

    assert cl.needed_bytes("needs ~1.5 GB, 0.1 GB free") == 1_500_000_000
    for bad in (
        "needs ~\u0661.\u0665 GB",
        "needs ~. GB",
        "needs ~... MB",
        "needs ~" + "9" * 400 + " GB",
    ):
        assert cl.needed_bytes(bad) is None, bad  # float('.') raised; 9*400 overflowed int()
    assert cl.KILLED_TASK.findall("srun: error: n1: task \u0663: Killed") == []
    assert cl.KILLED_TASK.findall("srun: error: n1: task 3: Killed") == [("n1", "3")]

    assert contract.master_port_for("\u0661\u0662") == contract.MASTER_PORT_BASE
    big = "1" + "0" * 5000 + "7"  # 10**5001 + 7: the same remainder as 7, without int() of it
    assert contract.master_port_for(big) == contract.MASTER_PORT_BASE + 7
