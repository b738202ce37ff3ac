"""Shared fixtures: an isolated user environment and an in-process CLI runner."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


JOB_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGHUP)


def pytest_configure(config: pytest.Config) -> None:
    """Give every child the default dispositions of the job signals. A runner that ignores or
    blocks one (a CI runner ignored SIGUSR2) passes that on, and bash can never trap a signal
    ignored when it started: the batch scripts' USR2 handling would be silently off. Slurm's
    slurmstepd starts batch scripts with defaults, so the tests must too."""
    for sig in JOB_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, JOB_SIGNALS)


@pytest.fixture(autouse=True)
def _job_signals_restored() -> Iterator[None]:
    """Code run in-process (the job side's entry points set SIGUSR2 to SIG_IGN, as they must
    in a job) must not leave it so for the tests after it, whose bash children would inherit
    the ignored signal and could never trap it."""
    saved = {sig: signal.getsignal(sig) for sig in JOB_SIGNALS}
    yield
    for sig, handler in saved.items():
        if signal.getsignal(sig) != handler and handler is not None:
            signal.signal(sig, handler)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _never_the_real_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the machine's own state store (~/.local/state/olmoctl): a
    store a newer branch migrated there once made an unrelated test fail. Tests that want a
    user set it up themselves (user_env, or the integration tests' private state dirs)."""
    monkeypatch.setenv("OLMOCTL_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fixed user (alice) with an empty config dir and state dir, no account in the env,
    so rendered paths and lookups do not depend on who runs the tests. Yields the user's
    olmoctl config dir (holding clusters/ and recipes/ once a test writes them)."""
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    config = home / ".config" / "olmoctl"
    for var in ("OLMOCTL_ACCOUNT", "SBATCH_ACCOUNT"):
        monkeypatch.delenv(var, raising=False)
    # A fixed HOME so `~` in profiles renders the same on every machine (golden files).
    monkeypatch.setenv("HOME", "/home/alice")
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.setenv("OLMOCTL_CONFIG_DIR", str(config))
    monkeypatch.setenv("OLMOCTL_STATE_DIR", str(tmp_path / "state"))
    yield config


@pytest.fixture
def cli(user_env: Path, capsys: pytest.CaptureFixture[str]):
    """Run `olmoctl ARGS` in-process; returns exit code, stdout and stderr."""
    from olmoctl.cli.main import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


# Every message a bad-input suite provokes must stay one line of bounded length, whatever the
# input held (newlines, megabytes): checked on each UsageError as it is made.
_BAD_INPUT_SUITES = ("test_bad_input", "test_input_bounds")
MESSAGE_LIMIT = 600


@pytest.fixture(autouse=True)
def _usage_errors_are_one_line(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if not request.module.__name__.rsplit(".", 1)[-1].startswith(_BAD_INPUT_SUITES):
        yield
        return
    from olmoctl.errors import UsageError

    made: list[str] = []
    init = UsageError.__init__

    def recording(self: UsageError, *args: object) -> None:
        made.append(str(args[0]) if args else "")
        init(self, *args)

    monkeypatch.setattr(UsageError, "__init__", recording)
    yield
    for msg in made:
        assert "\n" not in msg and "\r" not in msg, f"multi-line error: {msg[:300]!r}"
        assert msg.isprintable(), f"control characters in an error: {msg[:300]!r}"
        assert len(msg) <= MESSAGE_LIMIT, f"{len(msg)}-character error: {msg[:300]!r}..."
