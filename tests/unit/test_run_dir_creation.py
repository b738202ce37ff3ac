"""Issue 26 item 3 and the permissions half of item 1: a new run's directory is made fresh
(never an existing folder, never through a link), olmoctl's folders are not writable by
others whatever the umask, and a run directory others can write is reported, not resumed."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from olmoctl.backends import files as run_files
from olmoctl.backends.files import LOCAL
from olmoctl.core.launch import names
from olmoctl.core.launch import submit as launch
from olmoctl.core.supervise import watch as supervise
from olmoctl.errors import UsageError
from olmoctl.paths import DB_NAME
from olmoctl.store import Store
from tests.unit.test_remote import (
    OLMOCTL,
    _PipeLink,
    remote,  # noqa: F401 - the fixture
)
from tests.unit.test_store import FakeBackend
from tests.unit.test_supervise import _end


def _tree(root: Path) -> dict[str, bytes | None]:
    """Everything under `root` (links not followed): path -> bytes, None for a folder."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = None if os.path.islink(p) else Path(p).read_bytes()
    return out


def _foreign(runs: Path, outside: Path, how: str) -> Path:
    """What is already at runs/r: someone's folder, a link to a folder outside, a link to
    nowhere, a file."""
    runs.mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    (outside / "theirs.txt").write_text("do not touch\n")
    target = runs / "r"
    if how == "folder":
        target.mkdir()
        (target / "theirs.txt").write_text("do not touch\n")
    elif how == "link":
        target.symlink_to(outside, target_is_directory=True)
    elif how == "dangling":
        target.symlink_to(outside / "not-there")
    elif how == "file":
        target.write_text("do not touch\n")
    return target


HOW = ("folder", "link", "dangling", "file")
WORDS = {
    "folder": "already exists and is not an olmoctl run (no spec.json)",
    "link": "is a symbolic link",
    "dangling": "is a symbolic link",
    "file": "is a regular file",
}


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("cluster", ["local", "dev"])
@pytest.mark.parametrize("how", HOW)
def test_launch_into_something_already_there_is_refused(
    cli, tmp_path: Path, monkeypatch, how: str, cluster: str, dry_run: bool
) -> None:
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    target = _foreign(runs, outside, how)
    before_runs, before_outside = _tree(runs), _tree(outside)
    submitted: list[str] = []

    class Recording(FakeBackend):
        def submit(self, spec, script):  # type: ignore[no-untyped-def]
            submitted.append(spec.name)  # never reached: no job may start from there
            return super().submit(spec, script)

    monkeypatch.setattr(launch, "backend_for", lambda spec: Recording())
    args = ["launch", "tiny", "--cluster", cluster, "--name", "r"]
    res = cli(*args, "-o", f"cluster.runs_root={runs}", *(["--dry-run"] if dry_run else []))
    assert res.code == 2, res.err
    assert len(res.err.strip().splitlines()) == 1 and WORDS[how] in res.err
    assert str(target) in res.err and "Traceback" not in res.err
    assert submitted == []
    assert _tree(runs) == before_runs and _tree(outside) == before_outside  # nothing written
    assert not (Path(os.environ["OLMOCTL_STATE_DIR"]) / DB_NAME).exists()  # nor stored


@pytest.mark.parametrize("how", HOW)
def test_the_run_dir_writer_itself_refuses_what_is_there(tmp_path: Path, how: str) -> None:
    """Below the name check (a sweep point, doctor, a remote launch, a race): LocalFiles
    makes the directory itself, with mkdir of the last component."""
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    target = _foreign(runs, outside, how)
    before = _tree(runs), _tree(outside)
    with pytest.raises(UsageError, match=re.escape(WORDS[how])):
        LOCAL.write_run_dir(str(target), {"spec.json": ("{}", 0o644)}, new_run=True)
    assert (_tree(runs), _tree(outside)) == before


def test_a_folder_made_by_someone_else_meanwhile_is_not_adopted(tmp_path: Path, monkeypatch):
    target = tmp_path / "runs" / "r"
    target.mkdir(parents=True)  # appears between the look and the mkdir
    monkeypatch.setattr(run_files, "new_dir_problem", _after_first(run_files.new_dir_problem))
    with pytest.raises(UsageError, match="already exists"):
        LOCAL.write_run_dir(str(target), {"spec.json": ("{}", 0o644)}, new_run=True)
    assert list(target.iterdir()) == []


def _after_first(check):  # type: ignore[no-untyped-def]
    calls = []

    def look(path):  # type: ignore[no-untyped-def]
        calls.append(path)
        return None if len(calls) == 1 else check(path)

    return look


def test_a_link_inside_an_existing_run_is_not_written_through(tmp_path: Path) -> None:
    """A later attempt writes into the run's own directory: a folder of it swapped for a
    link to elsewhere (a path with a symlinked component below the runs root) is refused."""
    run_dir, outside = tmp_path / "runs" / "r", tmp_path / "outside"
    run_dir.mkdir(parents=True)
    outside.mkdir()
    (run_dir / "spec.json").write_text("{}")
    (run_dir / "scripts").symlink_to(outside, target_is_directory=True)
    files = {"spec.json": ("{}", 0o644), "scripts/attempt-2.sh": ("echo\n", 0o755)}
    with pytest.raises(UsageError, match="symbolic link"):
        LOCAL.write_run_dir(str(run_dir), files, new_run=False)
    assert list(outside.iterdir()) == []


def test_a_runs_root_that_is_a_link_is_the_users_business(tmp_path: Path) -> None:
    """Above the runs root nothing is refused: ~/olmoctl-runs -> /scratch/... is common."""
    real = tmp_path / "scratch"
    real.mkdir()
    (tmp_path / "runs").symlink_to(real, target_is_directory=True)
    assert LOCAL.write_run_dir(str(tmp_path / "runs" / "r"), {}, new_run=True)
    assert (real / "r" / "logs").is_dir()


def test_a_free_name_skips_whatever_is_at_its_path(user_env, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _foreign(runs, tmp_path / "outside", "folder")
    (runs / "r-2").symlink_to(tmp_path / "outside")
    assert names.free_name(Store(), "r", str(runs)) == "r-3"


def test_a_remote_launch_into_a_foreign_folder_writes_nothing(
    user_env,
    remote,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    """The login node makes the directory: a folder already there is refused there too,
    and the local store keeps nothing."""
    from tests.conftest import REPO

    runs, outside = tmp_path / "remote-runs", tmp_path / "outside"
    target = _foreign(runs, outside, "link")
    (user_env / "clusters").mkdir(parents=True)
    profile = (REPO / "clusters" / "dev.yaml").read_text().replace("name: dev", "name: far")
    ssh_block = f"ssh:\n  host: login.example\n  remote_olmoctl: {OLMOCTL}\n"
    (user_env / "clusters" / "far.yaml").write_text(profile + ssh_block)
    store = Store()
    spec = launch.prepare(store, "tiny", "far", nodes=1, name="r", time_limit=None,
                          overrides=[f"cluster.runs_root={runs}"])  # fmt: skip
    monkeypatch.setattr(remote, "check_reachable", lambda spec: None)
    assert isinstance(remote.link, _PipeLink)
    with pytest.raises(UsageError, match="is a symbolic link"):
        launch.submit_attempt(store, spec, remote, new_run=True)
    assert store.run_names() == []
    assert [p.name for p in outside.iterdir()] == ["theirs.txt"] and target.is_symlink()


# -- permissions ----------------------------------------------------------------------------
@pytest.fixture
def umask_002():
    old = os.umask(0o002)  # a project folder's usual umask
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_nothing_olmoctl_makes_is_writable_by_others(user_env, tmp_path: Path, umask_002):
    """Under umask 002: the run directory, its folders, and what submitit (here the fake
    scheduler, as submitit does) makes during the submission: none group/other-writable."""
    runs = tmp_path / "runs"
    runs.mkdir()
    os.chmod(runs, 0o2775)  # a project folder: setgid, group-writable
    made: list[Path] = []

    class Submitit(FakeBackend):
        def submit(self, spec, script):  # type: ignore[no-untyped-def]
            folder = Path(spec.run_dir) / "submitit"
            folder.mkdir(exist_ok=True)  # as submitit does: mode 0777 & ~umask
            (folder / "101_submitted.pkl").write_bytes(b"pickle")
            made.extend([folder, folder / "101_submitted.pkl"])
            return super().submit(spec, script)

    store = Store()
    spec = launch.prepare(store, "tiny", "dev", nodes=1, name="r", time_limit=None,
                          overrides=[f"cluster.runs_root={runs}"])  # fmt: skip
    launch.submit_attempt(store, spec, Submitit(), new_run=True)
    run_dir = Path(spec.run_dir)
    for p in [run_dir, run_dir / "logs", run_dir / "scripts", *made]:
        assert _mode(p) & 0o022 == 0, f"{p}: {_mode(p):04o}"
    assert _mode(run_dir) == 0o2755  # setgid kept: files stay in the project's group
    assert os.umask(0o002) == 0o002  # put back after the submission
    assert LOCAL.untrusted(str(run_dir)) is None


def _ended_run(run: Store, tmp_path: Path, spoil: str) -> Path:
    _end(run, "NODE_FAIL")
    run_dir = tmp_path / "r"
    if spoil == "group-writable":
        os.chmod(run_dir, 0o775)
    elif spoil == "subfolder":
        (run_dir / "checkpoints").mkdir(mode=0o755)
        os.chmod(run_dir / "checkpoints", 0o777)
    elif spoil == "another user":
        os.chown(run_dir, 12345, -1)
    return run_dir


SPOILS = {
    "group-writable": "is writable by its group or others (mode 0775)",
    "subfolder": "checkpoints is writable by its group or others (mode 0777)",
    "another user": "belongs to another user (uid 12345)",
}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
@pytest.mark.parametrize("spoil", SPOILS)
def test_a_run_dir_others_can_write_is_reported_and_not_resumed(
    cli, run: Store, tmp_path: Path, spoil: str
) -> None:
    _ended_run(run, tmp_path, spoil)
    run.close()
    shown = cli("status", "r")
    assert shown.code == 0 and SPOILS[spoil] in shown.err
    assert "resume and watch will not use it" in shown.err
    assert len([ln for ln in shown.err.splitlines() if SPOILS[spoil] in ln]) == 1
    resumed = cli("resume", "r")
    assert resumed.code == 2 and SPOILS[spoil] in resumed.err
    assert len(resumed.err.strip().splitlines()) == 1
    assert len(Store().attempts("r")) == 1  # nothing submitted, nothing recorded


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_watch_skips_a_run_dir_others_can_write_with_a_note_once(run: Store, tmp_path):
    _ended_run(run, tmp_path, "another user")
    policy = supervise.WatchPolicy(backoff_s=0)
    done = supervise.tick(run, "me", policy, runs=["r"])
    assert len(done) == 1 and "not resumed" in done[0] and SPOILS["another user"] in done[0]
    assert supervise.tick(run, "me", policy, runs=["r"]) == []  # said once
    assert len(run.attempts("r")) == 1
    os.chown(tmp_path / "r", os.geteuid(), -1)  # once it is this user's alone: resumed
    done = supervise.tick(run, "me", policy, runs=["r"])
    assert any("resumed after NODE_FAIL" in line for line in done)
    assert len(run.attempts("r")) == 2
