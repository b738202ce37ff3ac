"""Hostile places (issue 26 items 6, 7): every path the OS refuses is one line, never a
traceback; garbage in any store column or run-directory file is a bad row or one line; a
refusal changes nothing (a foreign store, card --out, launch --from). Real files, real
sqlite, the real CLI in-process; Hypothesis generates the garbage (bounded, derandomized)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from olmoctl.cli import main
from olmoctl.core.launch import submit as launch
from olmoctl.store import DB_NAME, Store

RUN = "r"
FUZZ = settings(
    derandomize=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _one_line(res, code: int = 2) -> str:
    assert res.code == code, res
    assert "Traceback" not in res.err + res.out
    # (a launch's warnings may come first: the error is the one last line)
    lines = res.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("olmoctl: error: ")]
    assert errors == lines[-1:], res.err
    return lines[-1]


def _make_run(tmp_path: Path) -> Path:
    """Run `r` (tiny on local, COMPLETED) with a run directory: spec.json, three step
    events, a checkpoint row, one attempt and a node-health row. Returns the run dir."""
    store = Store()
    spec = launch.prepare(
        store, "tiny", "local", nodes=1, name=RUN, time_limit=None,
        overrides=[f"cluster.runs_root={tmp_path / 'runs'}"],
    )  # fmt: skip
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(spec.model_dump_json())
    events = [{"event": "step", "ts": 1e9 + i, "step": 10 * i, "loss": 3.0 - i} for i in (1, 2, 3)]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    with store.tx() as tx:
        tx.create_run(spec, state="COMPLETED")
        a = tx.add_attempt(RUN, cluster="local", nodes=1, state="COMPLETED", job_id="7")
        tx.update_attempt(a, klass="COMPLETED", submitted_at=1e9, started_at=1e9 + 1,
                          ended_at=1e9 + 60, first_step=10, last_step=30)  # fmt: skip
        tx.record_checkpoint(RUN, 30, str(run_dir / "checkpoints" / "step_00000030"), True)
        tx.node_failure("local", "n1", "NODE_FAIL")
    store.close()
    return run_dir


# ------------------------------------------------------------ item 6: paths the OS refuses
def _places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a_file").write_text("x")
    os.symlink(tmp_path / "loop_b", tmp_path / "loop_a")
    os.symlink(tmp_path / "loop_a", tmp_path / "loop_b")
    return {
        "no_such_user": "~nosuchuser-olmoctl/x",
        "name_too_long": "/tmp/" + "n" * 300,
        "path_too_long": "/tmp/" + "/".join(["p" * 200] * 25),
        "dev_null": "/dev/null/x",
        "proc": "/proc/olmoctl-x",
        "sys": "/sys/olmoctl-x",
        "a_file": str(tmp_path / "a_file" / "x"),
        "link_loop": str(tmp_path / "loop_a"),
    }


PLACES = (
    "no_such_user", "name_too_long", "path_too_long", "dev_null", "proc", "sys", "a_file",
    "link_loop",
)  # fmt: skip
USES = ("card_out", "export_out", "runs_root", "state_dir", "cluster_file", "from_spec")


@pytest.mark.parametrize("use", USES)
@pytest.mark.parametrize("place", PLACES)
def test_a_path_the_os_refuses_is_one_line(
    cli, tmp_path: Path, monkeypatch, place: str, use: str
) -> None:
    if use == "runs_root" and place == "no_such_user":
        pytest.skip("runs_root must start with / or ~/ (schema: not absolute)")
    path = _places(tmp_path)[place]
    monkeypatch.chdir(tmp_path)  # a relative path made by mistake lands here
    if use in ("card_out", "export_out"):
        _make_run(tmp_path)
        before = sorted(p.name for p in tmp_path.iterdir())
        res = cli("card" if use == "card_out" else "export", RUN, "--out", path)
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half-written
    elif use == "runs_root":
        res = cli("launch", "tiny", "-c", "local", "-o", f"cluster.runs_root={path}")
        assert Store().runs() == []  # no half-made run
    elif use == "state_dir":
        monkeypatch.setenv("OLMOCTL_STATE_DIR", path)
        res = cli("launch", "tiny", "-c", "local", "--dry-run")
        res = res if res.code else cli("status", "nope")
    elif use == "cluster_file":
        res = cli("render", "tiny", "-c", path + ".yaml")
    else:
        res = cli("render", "--from-spec", path)
    _one_line(res, 2)


def test_a_relative_state_dir_is_used_or_refused_in_one_line(
    cli, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OLMOCTL_STATE_DIR", "rel/state")
    assert cli("status").code == 0
    (tmp_path / "rel").write_text("a file where the folder should be")
    _one_line(cli("launch", "tiny", "-c", "local", "-o", f"cluster.runs_root={tmp_path}"))


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONIOENCODING": "ascii"},
        {"_OLMOCTL_COMPLETE": "complete_bash", "COMP_WORDS": "olmoctl st", "COMP_CWORD": "x"},
    ],
    ids=["ascii_terminal", "odd_completion"],
)
def test_odd_environments_are_not_tracebacks(user_env, tmp_path: Path, env) -> None:
    _make_run(tmp_path)
    cmd = [sys.executable, "-m", "olmoctl", "status", RUN]
    res = subprocess.run(
        cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in res.stderr
    if "PYTHONIOENCODING" in env:
        assert res.returncode == 0 and "\\u2581" in res.stdout  # the sparkline, escaped
    else:
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_did_you_mean_is_said_once(capsys) -> None:
    assert main.run(["statsu"]) == 2
    assert capsys.readouterr().err.count("Did you mean") == 1


# ----------------------------------------------------------- item 7: refusing changes nothing
def _snapshot(*paths: Path) -> dict[str, tuple[int, bytes]]:
    out = {}
    for d in paths:
        for p in sorted(d.rglob("*")) if d.is_dir() else [d]:
            if p.is_file():
                out[str(p)] = (os.stat(p).st_mode, p.read_bytes())
    return out


@pytest.mark.parametrize("version", [-1, -(2**31), 0, 1, 10**6])
def test_a_foreign_sqlite_file_is_refused_untouched(cli, tmp_path: Path, version: int) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    db = state / DB_NAME
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("CREATE TABLE notes (x)")
    if version == 1:  # olmoctl's table names, someone else's program
        conn.execute("PRAGMA application_id = 1234")
        conn.execute("CREATE TABLE runs (x)")
        conn.execute("CREATE TABLE attempts (x)")
    conn.commit()
    conn.close()
    os.chmod(db, 0o644)
    before = _snapshot(state)
    for argv in (["status"], ["launch", "tiny", "-c", "local", "--dry-run"], ["nodes"]):
        line = _one_line(cli(*argv))
        assert str(db) in line, line
    assert _snapshot(state) == before  # no chmod, no WAL, no migration, no -wal/-shm


def test_card_refused_half_way_leaves_no_files(cli, tmp_path: Path) -> None:
    _make_run(tmp_path)
    out = tmp_path / "card"
    out.mkdir()
    (out / f"{RUN}.md").mkdir()  # the last file card writes cannot be written
    before = _snapshot(tmp_path / "runs", out)
    _one_line(cli("card", RUN, "--out", str(out)))
    assert _snapshot(tmp_path / "runs", out) == before
    assert sorted(p.name for p in out.iterdir()) == [f"{RUN}.md"]


def test_launch_from_show_and_card_refused_leave_the_records(cli, tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path)
    (run_dir / "record.json").write_text('{"seed": ' + "9" * 5000 + "}")
    db = tmp_path / "state" / DB_NAME
    before = _snapshot(run_dir), sqlite3.connect(db).execute("SELECT * FROM runs").fetchall()
    _one_line(cli("launch", "--from", RUN, "-o", "optim.nope=1"))
    _one_line(cli("launch", "--from", RUN, "--name", RUN))  # already exists
    _one_line(cli("card", RUN, "--out", "/proc/olmoctl-x"))
    after = _snapshot(run_dir), sqlite3.connect(db).execute("SELECT * FROM runs").fetchall()
    assert after == before
    assert sqlite3.connect(db).execute("SELECT count(*) FROM run_records").fetchone() == (0,)


# ------------------------------------------------------- generated garbage in store columns
COLUMNS = {
    "runs": ("recipe", "cluster", "nodes", "state", "run_dir", "spec_json", "total_steps",
             "sweep", "created_at", "updated_at", "summary_json"),
    "attempts": ("attempt_no", "job_id", "nodes", "node_list", "submitted_at", "started_at",
                 "ended_at", "state", "exit_code", "reason", "first_step", "last_step",
                 "script", "evidence_json", "restart_index", "klass", "job_identity"),
    "checkpoints": ("step", "path", "complete", "bytes", "saved_at", "deleted_at"),
    "node_health": ("failures", "last_reason", "last_at", "last_check", "measured",
                    "expected", "unit"),
}  # fmt: skip
GARBAGE = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 0.5, "yesterday", "a\x00b", "{", "[]", '{"step": "x"}']),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.binary(min_size=1, max_size=10).map(lambda b: ("utf8", b)),  # stored as invalid text
)
CHANGES = st.lists(
    st.sampled_from(sorted(COLUMNS)).flatmap(
        lambda t: st.tuples(st.just(t), st.sampled_from(COLUMNS[t]), GARBAGE)
    ),
    min_size=1,
    max_size=4,
)
READERS = (["status"], ["status", "--json"], ["status", RUN], ["nodes"], ["nodes", "--json"],
           ["show", RUN], ["card", RUN, "--out", "CARD"])  # fmt: skip


@pytest.fixture
def template(cli, tmp_path: Path) -> Path:
    _make_run(tmp_path)
    return tmp_path


@FUZZ
@given(changes=CHANGES)
@example(changes=[("attempts", "started_at", "yesterday"), ("node_health", "failures", "x")])
@example(changes=[("attempts", "ended_at", 1e308), ("checkpoints", "step", b"\x00")])
@example(changes=[("runs", "summary_json", '{"loss": "x"}'), ("attempts", "node_list", b"\x01")])
@example(changes=[("runs", "run_dir", "/tmp/a\x00b"), ("checkpoints", "path", "c\x00")])
def test_garbage_in_any_store_column_is_a_bad_row_or_one_line(cli, template, changes) -> None:
    db = template / "state" / DB_NAME
    pristine = template / "pristine.sqlite3"
    if not pristine.exists():
        shutil.copy(db, pristine)
    shutil.copy(pristine, db)
    conn = sqlite3.connect(db)
    for table, col, value in changes:
        cast, value = ("CAST(? AS TEXT)", value[1]) if isinstance(value, tuple) else ("?", value)
        with contextlib.suppress(sqlite3.IntegrityError):  # NOT NULL: the one thing refused
            conn.execute(f"UPDATE {table} SET {col} = {cast}", (value,))
    conn.commit()
    conn.close()
    for argv in READERS:
        argv = [str(template / "card") if a == "CARD" else a for a in argv]
        res = cli(*argv)
        assert res.code in (0, 1, 2), (argv, changes, res)
        assert "Traceback" not in res.err + res.out, (argv, changes, res.err)
        if res.code:
            _one_line(res, res.code)


# ------------------------------------------------ generated garbage in run-directory files
PIECES = st.one_of(
    st.sampled_from(
        [
            '{"event": "step", "ts": 1e9, "step": 40, "loss": 1.5}',
            '{"event": "step", "ts": "soon", "step": "x", "loss": null}',
            '{"event": "exiting", "ts": 1e308, "step": 99999999999999999999999}',
            '{"event": "step", "step": ' + "9" * 5000 + "}",
            '{"event": "checkpoint", "step": -1, "path": "/etc"}',
            '{"seed": ' + "9" * 5000 + "}",
            "[" * 5000 + "]" * 5000,
            '{"a": "\x00\x1b[31m"}',
            '{"event": "started", "ts": 1, "versions": {"torch": 7}, "devices": "x"}',
            "{",
            "null",
            "[]",
            '"text"',
            "1e309",
            "NaN",
        ]
    ),
    st.text(max_size=40),
).map(str.encode) | st.binary(max_size=40)
FILES = ("events.jsonl", "spec.json", "record.json")
CONTENTS = st.dictionaries(
    st.sampled_from(FILES), PIECES | st.lists(PIECES, max_size=4).map(b"\n".join), min_size=1
)
DIR_READERS = (["status"], ["status", RUN], ["show", RUN], ["card", RUN, "--out", "CARD"],
               ["logs", RUN], ["render", "--from-spec", "SPEC"])  # fmt: skip


@settings(FUZZ, max_examples=30)  # six commands an example: within the 30 s budget
@given(contents=CONTENTS)
@example(contents={"spec.json": b'{"nodes": ' + b"9" * 5000 + b"}"})
@example(contents={"record.json": b'{"seed": ' + b"9" * 5000 + b"}", "events.jsonl": b"\xff\x00"})
@example(contents={"events.jsonl": b"[" * 100_000, "spec.json": b"\xff\xfe{"})
def test_garbage_in_run_directory_files_is_one_line_at_most(cli, template, contents) -> None:
    run_dir = template / "runs" / RUN
    saved = template / "pristine-run"
    if not saved.exists():
        shutil.copytree(run_dir, saved)
    shutil.rmtree(run_dir)
    shutil.copytree(saved, run_dir)
    for name, data in contents.items():
        (run_dir / name).write_bytes(data)
    for argv in DIR_READERS:
        subs = {"CARD": str(template / "card"), "SPEC": str(run_dir / "spec.json")}
        argv = [subs.get(a, a) for a in argv]
        res = cli(*argv)
        assert res.code in (0, 1, 2), (argv, contents, res)
        assert "Traceback" not in res.err + res.out, (argv, res.err)
        if res.code:
            _one_line(res, res.code)


def test_a_path_column_with_a_nul_is_a_bad_row(cli, template) -> None:
    """NUL is text (shown escaped) but never a path: Python refuses it before the OS."""
    conn = sqlite3.connect(template / "state" / DB_NAME)
    conn.execute("UPDATE runs SET run_dir = ?", ("/tmp/a\x00b",))
    conn.commit()
    conn.close()
    for argv in (["status", RUN], ["logs", RUN], ["resume", RUN]):
        line = _one_line(cli(*argv), 1)
        assert "run_dir is not a path" in line, line
    res = cli("status", "--json")
    assert res.code == 0 and json.loads(res.out)[0]["damaged"] == "run_dir is not a path"
