"""Exit statuses (olmoctl/cli/exits.py): main() returns what a command means, every count /
size / time option is range-checked before the command runs."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
import typer

from olmoctl.cli import exits, options
from olmoctl.errors import OlmoctlError, UsageError


@dataclass(frozen=True)
class _Attempt:
    state: str
    klass: str | None
    reason: str | None = None


@pytest.mark.parametrize(
    ("state", "klass", "code"),
    [
        ("COMPLETED", "COMPLETED", exits.OK),
        ("FAILED", "CODE_ERROR", exits.FAILED),
        ("OUT_OF_MEMORY", "OOM", exits.FAILED),
        ("FAILED", "UNKNOWN", exits.FAILED),
        ("CANCELLED", "CANCELLED", exits.CANCELLED),
        ("TIMEOUT", "TIMEOUT", exits.STOPPED),
        ("PREEMPTED", "PREEMPTED", exits.STOPPED),
        ("NODE_FAIL", "NODE_FAIL", exits.STOPPED),
        ("FAILED", "RANK_KILLED", exits.STOPPED),
        ("FAILED", "COLLECTIVE", exits.STOPPED),
        ("CANCELLED", "HANG", exits.STOPPED),
        # not classified (yet): Slurm's word decides
        ("COMPLETED", None, exits.OK),
        ("CANCELLED", None, exits.CANCELLED),
        ("BOOT_FAIL", None, exits.STOPPED),
        ("DEADLINE", None, exits.STOPPED),
        ("FAILED", None, exits.FAILED),
        ("SUBMIT_FAILED", None, exits.FAILED),
        ("RUNNING", None, exits.FAILED),  # a wait that gave up: not a success
    ],
)
def test_run_end_codes(state: str, klass: str | None, code: int) -> None:
    assert exits.of_run_end(_Attempt(state, klass)) == code


def test_no_attempt_is_a_failure() -> None:
    assert exits.of_run_end(None) == exits.FAILED


def test_codes_are_distinct_and_documented() -> None:
    codes = [c for c, _ in exits.TABLE]
    assert len(set(codes)) == len(codes) == 6
    readme = (__import__("tests.conftest").conftest.REPO / "README.md").read_text()
    for code, _ in exits.TABLE:
        assert f"| {code} " in readme, code


def _fake_app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command("ok")
    def ok() -> None:
        typer.echo("fine")

    @app.command("exit")
    def exit_(code: int) -> None:
        raise typer.Exit(code)

    @app.command("ctrl-c")
    def ctrl_c() -> None:
        raise KeyboardInterrupt

    @app.command("usage")
    def usage() -> None:
        raise UsageError("bad thing")

    @app.command("fail")
    def fail() -> None:
        raise OlmoctlError("it broke")

    @app.command("count")
    def count(n: int = typer.Option(1, "--n", callback=options.bounded("--n", 1, 10))) -> None:
        typer.echo(f"n={n}")

    return app


@pytest.mark.parametrize(
    ("args", "code", "err"),
    [
        (["ok"], 0, ""),
        (["exit", "0"], 0, ""),
        (["exit", "1"], 1, ""),
        (["exit", "3"], 3, ""),
        (["exit", "4"], 4, ""),
        (["ctrl-c"], 130, "olmoctl: interrupted"),
        (["usage"], 2, "olmoctl: error: bad thing"),
        (["fail"], 1, "olmoctl: error: it broke"),
        (["count", "--n", "0"], 2, "olmoctl: error: --n must be at least 1, got 0"),
        (["count", "--n", "11"], 2, "olmoctl: error: --n must be at most 10, got 11"),
        (["count", "--n", "x"], 2, "olmoctl: error: Invalid value for '--n'"),
        (["count", "--bogus"], 2, "olmoctl: error: No such option"),
        (["nope"], 2, "olmoctl: error: No such command 'nope'"),
    ],
)
def test_main_honours_every_exit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args, code, err
) -> None:
    from olmoctl.cli import main as main_mod

    monkeypatch.setattr(main_mod, "app", _fake_app())
    with pytest.raises(SystemExit) as e:
        main_mod.main(args)
    assert e.value.code == code
    out = capsys.readouterr().err
    assert len(out.strip().splitlines()) <= 1, out  # one line at most
    assert out.startswith(err), out


def test_bare_olmoctl_still_prints_help(cli) -> None:
    res = cli()
    assert res.code == 2 and "Usage" in res.out + res.err


def test_help_lists_exit_statuses(cli) -> None:
    res = cli("--help")
    assert res.code == 0
    assert "Exit status" in res.out and "130" in res.out


def test_remote_call_bad_request_exits_2(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("not json"))
    res = cli("_remote", "call")
    assert res.code == 2
    assert '"fatal": "bad request' in res.out


def test_cancel_sweep_with_errors_exits_1(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from olmoctl.core import sweep

    out = {"sweep": "s", "cancelled": [], "never_submitted": [], "errors": ["s-0: scancel: no"]}
    monkeypatch.setattr(sweep, "cancel", lambda store, name: out)
    res = cli("cancel", "--sweep", "s")
    assert res.code == 1
    assert "olmoctl: error: s-0: scancel: no" in res.err


@pytest.mark.parametrize(
    ("klass", "state", "code"),
    [("COMPLETED", "COMPLETED", 0), ("CODE_ERROR", "FAILED", 1), ("CANCELLED", "CANCELLED", 3),
     ("NODE_FAIL", "NODE_FAIL", 4)],
)  # fmt: skip
def test_wait_exits_with_the_runs_outcome(monkeypatch, capsys, klass, state, code) -> None:
    from olmoctl.cli import progress, runs_cmds

    last = _Attempt(state, klass, reason="why")
    monkeypatch.setattr(progress, "wait_for_run", lambda *a, **k: last)
    if code == 0:
        runs_cmds._wait(None, "r", as_json=False)
        return
    with pytest.raises(typer.Exit) as e:
        runs_cmds._wait(None, "r", as_json=False)
    assert e.value.exit_code == code
    err = capsys.readouterr().err
    assert f"r: ended {klass}: why (exit status {code})" in err
    # Stopped by the infrastructure: say how to continue (README's table).
    assert ("; continue it: olmoctl resume r" in err) == (code == 4)


def test_cli_limits_agree_with_the_schemas() -> None:
    from olmoctl.core.sweep import spec
    from olmoctl.schemas import bounds

    assert options.MAX_POINTS == spec.MAX_POINTS
    assert options.INT64_MAX == bounds.INT64_MAX
    assert options.DAY_S == bounds.DAY_S
