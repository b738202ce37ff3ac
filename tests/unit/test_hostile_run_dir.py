"""Issue 26 item 2: a run directory is input. Whatever others put where olmoctl reads (a FIFO,
a link to /dev/zero or outside, a directory, a socket, a huge file, a link loop), every
reading command finishes, in bounded memory, with its documented exit status and one line
naming the file (olmoctl.fileread: regular files only, bounded reads).

The matrix (every kind x every file name the launcher reads x status / status RUN / logs /
logs --batch / card / show) runs in one subprocess (tests/unit/hostile_runs.py), where each
command is a thread joined with a hang guard and ru_maxrss is measured."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from olmoctl import fileread
from olmoctl.backends import ssh
from olmoctl.backends.files import LOCAL
from olmoctl.core.track import events as ev
from olmoctl.core.track import logs
from olmoctl.core.track.status_reads import status_reads
from olmoctl.fileread import Refused
from tests.conftest import REPO
from tests.unit import hostile_runs as h
from tests.unit.test_remote import remote  # noqa: F401 - the fixture

MEMORY_MB = 200  # ru_maxrss growth allowed per case (a 256 MiB file read whole would pass it)
BATCH, RANK0 = f"logs/slurm-{h.JOB}.out", f"logs/{h.JOB}-rank0.out"
# command -> the file names it reads: a refused one is named on stderr, in one line
READS = {
    "status": {"events.jsonl", RANK0, BATCH},  # the events tail; an ending's logs (classify)
    "status r": {"events.jsonl", RANK0, BATCH},
    "logs r": {RANK0},
    "logs r --batch": {BATCH},
    "card r": {"events.jsonl", "record.json"},  # record.json: written back, never through
    "show r": {"events.jsonl", "record.json"},
}
# (file, command) that exit 2 when the file is refused: the command has nothing else to do.
# Everything else exits 0 (status notes it on that run's row; logs prints the other ranks).
REFUSED_EXITS_2 = {
    ("events.jsonl", "card r"),
    ("events.jsonl", "show r"),
    ("record.json", "card r"),
    ("record.json", "show r"),
    (BATCH, "logs r --batch"),
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("hostile") / "results.jsonl"
    cases = len(h.KINDS) * len(h.NAMES) * len(h.COMMANDS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLMOCTL_")}
    res = subprocess.run(
        [sys.executable, "-m", "tests.unit.hostile_runs", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=h.HANG_GUARD_S * cases,  # a hang guard: each case takes well under a second
    )
    assert res.returncode == 0, res.stderr[-3000:]
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in out.read_text().splitlines():
        case = json.loads(line)
        found.setdefault((case["kind"], case["name"]), []).append(case)
    assert len(found) == len(h.KINDS) * len(h.NAMES), "every case ran"
    return found


@pytest.mark.parametrize("name", h.NAMES)
@pytest.mark.parametrize("kind", h.KINDS)
def test_every_command_finishes_in_bounded_memory_with_one_line(
    matrix: dict[tuple[str, str], list[dict[str, Any]]], kind: str, name: str
) -> None:
    refused = kind != "huge"  # a huge regular file is read, bounded: nothing to say
    for case in matrix[(kind, name)]:
        cmd = " ".join(case["argv"])
        what = f"{cmd} with a {kind} at RUN_DIR/{name}"
        assert not case["hung"], f"{what}: still running after {h.HANG_GUARD_S}s"
        assert case["rss_growth_mb"] < MEMORY_MB, f"{what}: memory grew {case['rss_growth_mb']} MB"
        err = case["err"]
        assert "Traceback" not in err and isinstance(case["code"], int), f"{what}: {err}"
        expected = 2 if refused and (name, cmd) in REFUSED_EXITS_2 else 0
        assert case["code"] == expected, f"{what}: exit {case['code']}: {err}"
        lines = err.splitlines()
        assert all(ln.startswith(("note: ", "olmoctl: error: ")) for ln in lines), what
        if refused and name in READS[cmd]:
            said = [ln for ln in lines if Path(name).name in ln]
            assert len(said) == 1, f"{what}: the file is not named once on stderr: {err!r}"
            assert "not" in said[0], f"{what}: {said[0]}"
        if cmd == "status":  # the rest of the table still prints: both rows
            assert re.search(r"│ r +│", case["out"]) and re.search(r"│ ok +│", case["out"]), what
        if cmd == "logs r":  # the other rank still prints (and rank 0 unless replaced)
            assert case["out_hellos"] == (1 if name == RANK0 else 2), what
        if cmd == "status r" and name.endswith(".complete"):  # a marker must be a real file
            assert ("10 (torn)" in case["out"]) == refused, f"{what}: {case['out'][-300:]}"


# -- the one reader ---------------------------------------------------------------------------
def _plant(kind: str, path: Path, tmp_path: Path) -> socket.socket | None:
    outside = tmp_path / "outside.txt"
    outside.write_text("elsewhere\n")
    return h._plant(kind, path, outside, outside)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("fifo", "is a FIFO (named pipe), not a regular file"),
        ("link_dev_zero", "is a symbolic link"),
        ("link_outside", "is a symbolic link"),
        ("directory", "is a directory, not a regular file"),
        ("socket", "is a socket, not a regular file"),
        ("link_loop", "is a symbolic link"),
    ],
)
def test_fileread_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str, words: str) -> None:
    path = tmp_path / "events.jsonl"
    held = _plant(kind, path, tmp_path)
    for read in (
        lambda: fileread.read_tail(path, 10),
        lambda: fileread.read_from(path, 0),
        lambda: fileread.read_head(path, 10),
    ):
        with pytest.raises(Refused, match=re.escape(words)) as e:
            read()
        assert str(path) in str(e.value) and "\n" not in str(e.value)
    if held is not None:
        held.close()


def test_a_swap_between_the_look_and_the_open_is_caught(tmp_path: Path, monkeypatch) -> None:
    """The name is lstat-ed, then opened: if it became another file meanwhile (a FIFO, a
    link, another inode), the fstat of the opened descriptor tells, and it is not read."""
    real, other = tmp_path / "a", tmp_path / "b"
    real.write_text("mine\n")
    other.write_text("theirs\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    looked = os.lstat(real)
    with monkeypatch.context() as m:  # os.lstat itself: undone at once
        m.setattr(fileread.os, "lstat", lambda p: looked)  # the look saw `real`...
        with pytest.raises(Refused, match="changed while being opened"):
            fileread.read_head(other, 100)  # ...but `other` is what opens
        with pytest.raises(Refused, match="changed while being opened"):
            fileread.read_head(fifo, 100)  # opened without blocking, refused by fstat


def test_reads_are_bounded(tmp_path: Path) -> None:
    p = tmp_path / "log"
    p.write_bytes(b"a" * 10 + b"b" * 10)
    assert fileread.read_tail(p, 5) == b"bbbbb"
    assert fileread.read_head(p, 3) == b"aaa"
    assert fileread.read_from(p, 8, 4) == b"aabb"
    assert fileread.read_from(p, 50) == b""
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(fileread.WHOLE_MAX * 4)
    assert len(LOCAL.read_tail(str(big), None)) == fileread.WHOLE_MAX  # "all" is bounded
    assert len(LOCAL.read_from(str(big), 0)) == fileread.CHUNK


def test_the_follower_reads_in_chunks_and_notes_a_refused_file_once(tmp_path: Path) -> None:
    good, bad = tmp_path / "0.out", tmp_path / "1.out"
    good.write_bytes(b"x" * (fileread.CHUNK + 5))
    os.mkfifo(bad)
    f = logs.Follower()
    first = f.read_new_many([good, bad])
    assert [len(d) for d in first] == [fileread.CHUNK, 0] and f.behind
    assert len(f.take_news()) == 1 and bad in f.refused
    assert [len(d) for d in f.read_new_many([good, bad])] == [5, 0] and not f.behind
    assert f.take_news() == []  # said once


def test_a_link_is_followed_only_where_the_user_named_the_path(tmp_path: Path) -> None:
    from olmoctl.schemas.bounded import read_text

    target = tmp_path / "profile.yaml"
    target.write_text("name: x\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert read_text(link, "cluster file") == "name: x\n"  # ~/.config may be links (stow)
    with pytest.raises(Exception, match="is a symbolic link"):
        read_text(link, "record", follow=False)  # a run directory's record.json


# -- the login node's side ------------------------------------------------------------------
def test_refusals_come_back_over_ssh_as_one_line(
    remote: ssh.SSHBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    os.mkfifo(run_dir / "events.jsonl")
    (run_dir / "logs" / "0.out").write_text("zero\n")
    os.symlink("/dev/zero", run_dir / "logs" / "1.out")
    fs = remote.files
    with pytest.raises(Refused, match=r"events\.jsonl is a FIFO"):
        ev.read_events(run_dir, fs=fs)  # the login node did not hang on it either
    got = fs.read_many([(str(run_dir / "logs" / "0.out"), 0), (str(run_dir / "logs" / "1.out"), 0)])
    assert got[0] == b"zero\n" and isinstance(got[1], Refused)
    assert "1.out is a symbolic link" in str(got[1])
    # Through the prefetch too: one round trip, the refusal filed as that read's answer.
    remote.prefetch(status_reads([], {}, [str(run_dir)]))
    trips = remote.round_trips
    with pytest.raises(Refused, match=r"events\.jsonl is a FIFO"):
        ev.read_events(run_dir, fs=fs)
    assert remote.round_trips == trips


def test_doctor_names_a_refused_report(tmp_path: Path) -> None:
    """A rank's RUN_DIR/preflight/rank-R.json that is not a regular file: that rank did not
    report, and the ranks line says why."""
    from olmoctl.core.doctor import job

    run_dir = tmp_path / "doc"
    (run_dir / "preflight").mkdir(parents=True)
    os.mkfifo(run_dir / "preflight" / "rank-1.json")

    class Spec:
        pass

    spec = Spec()
    spec.run_dir = str(run_dir)  # type: ignore[attr-defined]

    class Backend:
        files = LOCAL

    reports, refused = job._reports(Backend(), spec)  # type: ignore[arg-type]
    assert reports == {}
    assert list(refused) == [1] and "rank-1.json is a FIFO" in refused[1]


def test_export_takes_only_real_checkpoint_folders_and_markers(tmp_path: Path) -> None:
    from olmoctl.core.outputs.export import complete_steps

    root = tmp_path / "run" / "checkpoints"
    for step in (10, 20, 30):
        (root / f"step_{step:08d}").mkdir(parents=True)
    (root / "step_00000010" / ".complete").write_text('{"step": 10}')
    os.mkfifo(root / "step_00000020" / ".complete")  # would hang a plain read
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".complete").write_text('{"step": 40}')
    (root / "step_00000040").symlink_to(elsewhere)  # a folder outside the run
    assert list(complete_steps(str(tmp_path / "run"))) == [10]


def test_watch_leaves_a_run_alone_whose_events_are_refused(run, tmp_path: Path) -> None:
    """A running attempt whose events.jsonl is a FIFO: watch cannot judge a hang from it,
    says so once, and acts on nothing for that run."""
    from olmoctl.core.supervise import watch as supervise
    from olmoctl.store import AttemptState

    store = run
    last = store.last_attempt("r")
    with store.tx() as tx:
        tx.update_attempt(last.id, state=AttemptState.RUNNING, started_at=1.0)
    os.mkfifo(tmp_path / "r" / "events.jsonl")
    first = supervise.tick(store, "me", supervise.WatchPolicy(), runs=["r"])
    assert any("events.jsonl is a FIFO" in line and "left alone" in line for line in first)
    again = supervise.tick(store, "me", supervise.WatchPolicy(), runs=["r"])
    assert not any("FIFO" in line for line in again)  # said once


def test_a_link_to_a_file_beside_it_is_read_and_no_other(tmp_path: Path) -> None:
    """A job array's wrapper links logs/ARRAY_TASK-rankR.out to Slurm's raw JOB-rankR.out in
    the same folder: a bare name, one hop, a regular file. Anything more is refused."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "49-rank0.out").write_text("hello\n")
    (logs / "49_0-rank0.out").symlink_to("49-rank0.out")
    assert fileread.read_tail(logs / "49_0-rank0.out", 100) == b"hello\n"
    assert LOCAL.read_tail(str(logs / "49_0-rank0.out"), None) == b"hello\n"
    (tmp_path / "outside.txt").write_text("elsewhere\n")
    (logs / "hop").symlink_to("49_0-rank0.out")  # two hops
    (logs / "up").symlink_to("../outside.txt")  # out of the folder
    (logs / "abs").symlink_to(tmp_path / "outside.txt")
    (logs / "fifo").symlink_to("p")
    os.mkfifo(logs / "p")
    (logs / "gone").symlink_to("nothing-here")
    (logs / "self").symlink_to("self")
    for name in ("hop", "up", "abs", "fifo", "gone", "self"):
        with pytest.raises(Refused, match="is a symbolic link") as e:
            fileread.read_head(logs / name, 100)
        assert str(logs / name) in str(e.value), name
