"""The terminal is an output, not a markup language (issue 26 item 5): values from profiles,
the store, events, hosts and Slurm are printed as data, never as rich markup, emoji codes or
terminal control sequences; and a name is never cut.

Every check renders the real command in-process, as a terminal of 80 and 40 columns (a tty
with TERM=dumb: rich draws no colour, so any escape sequence in the output came from data)
and piped, and asks of the output: the command exits as it would for a plain value, the value
is there as text (control characters as \\x1b, \\r, \\u202e...), and no control character
other than a newline reaches the terminal."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from olmoctl import paths
from olmoctl.cli import text
from olmoctl.store import Store

# What the issue lists, and neighbours of it: rich markup (closing tags, links, a torch
# traceback's `[rank0]:`), emoji codes, CSI/OSC sequences, C0/C1 controls, bidi overrides.
FRAGMENTS = (
    "[/x]",
    "[/]",
    "[bold]",
    "[red on blue]",
    "[link=http://x.invalid]",
    "[rank0]:",
    "[@click=app.bell]",
    ":thumbs_up:",
    "\\[escaped]",
    "\x1b[31m",
    "\x1b[2J",
    "\x1b]8;;http://x.invalid\x1b\\",
    "\x1b]0;title\x07",
    "\x9b1m",
    "\x07",
    "\r",
    "\b",
    "\x00",
    "\x7f",
    "\t",
    "\n",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u2028",
)
# Box drawing is left out of the generated text: the oracle splits table rows at the borders.
PLAIN = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2502\u2503\u2501"),
    max_size=6,
)
HOSTILE = (
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), PLAIN), min_size=1, max_size=5)
    .map("".join)
    .filter(lambda s: s.replace(" ", ""))
)
MODES = (("tty", 80), ("tty", 40), ("piped", None))
LISTED = ("[/x]", "[rank0]: Traceback", "[link=http://x.invalid]click[/link]", "\x1b]0;t\x07\r\b")


def _is_control(c: str) -> bool:
    return not c.isprintable() and c != "\n"


def shown(value: str) -> str:
    """The spec: printable characters as they are, every other one as its escape."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in value)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def render(argv: list[str], mode: str, width: int | None) -> tuple[int, str, str]:
    """`olmoctl ARGV` in-process: (exit status, stdout, stderr)."""
    from olmoctl.cli.main import run

    out, err = (_Tty(), _Tty()) if mode == "tty" else (io.StringIO(), io.StringIO())
    saved = {k: os.environ.get(k) for k in ("COLUMNS", "LINES", "TERM", "TTY_COMPATIBLE")}
    os.environ.pop("TTY_COMPATIBLE", None)
    os.environ["TERM"] = "dumb"  # a terminal, without rich's colours
    os.environ["LINES"] = "25"  # else rich takes a dumb terminal for 80 columns
    if width is None:
        os.environ.pop("COLUMNS", None)
    else:
        os.environ["COLUMNS"] = str(width)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(argv)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


def streams(output: str) -> list[str]:
    """The text of `output` with its layout taken away: one stream per table column (cells
    split at the borders, joined down the rows) and one of every other line, all without
    spaces. A value wrapped or folded over lines is whole again in one of them."""
    plain: list[str] = []
    columns: dict[int, list[str]] = {}
    for line in output.splitlines():
        if "\u2502" in line or "\u2503" in line:
            for k, cell in enumerate(re.split("[\u2502\u2503]", line)):
                columns.setdefault(k, []).append(cell)
        else:
            plain.append(line)
    return ["".join(parts).replace(" ", "") for parts in (plain, *columns.values())]


def assert_data(output: str, *values: str) -> None:
    """Each value visible as text, and nothing in the output that acts on a terminal."""
    bad = sorted({ascii(c) for c in output if _is_control(c)})
    assert not bad, f"control characters reached the terminal: {bad}\n{output}"
    assert "\x1b]8;" not in output  # no OSC 8 hyperlink
    found = streams(output)
    for value in values:
        want = shown(value).replace(" ", "")
        assert any(want in s for s in found), f"{value!a} not shown as {want!r}:\n{output}"


# ------------------------------------------------------------------------------ the helpers
@settings(max_examples=300, deadline=None)
@given(value=HOSTILE, width=st.sampled_from((40, 80, 160)))
def test_any_value_prints_as_data_in_tables_and_lines(value: str, width: int) -> None:
    """text.data / text.show / text.echo, directly: many examples, every width."""
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    t = text.table(value, ["name", value, "reason"], names=["name"])
    t.add_row(text.data(value), text.data("x"), text.data(f"failed: {value}"))
    text.show(console, t)
    console.print(text.data(f"run dir: {value}"))
    assert_data(out.getvalue(), value, f"failed: {value}", f"run dir: {value}")
    echoed = io.StringIO()
    with contextlib.redirect_stdout(echoed):
        text.echo(f"note: {value}")
    assert_data(echoed.getvalue(), f"note: {value}")
    assert echoed.getvalue().count("\n") == 1  # one line, whatever the value held


@settings(max_examples=200, deadline=None)
@given(value=HOSTILE)
def test_multi_line_data_keeps_its_lines_and_tabs_only(value: str) -> None:
    shown_lines = text.lines(value)
    assert shown_lines.count("\n") == value.count("\n")
    assert shown_lines.count("\t") == value.count("\t")
    assert all(c.isprintable() or c in "\n\t" for c in shown_lines)
    assert shown_lines.replace("\t", "") == "\n".join(
        shown(line.replace("\t", "")) for line in value.split("\n")
    )


# ---------------------------------------------------------------- the commands, end to end
@pytest.fixture
def hostile_run(run: Store, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Run r (its attempt ended, classified) and a second run row: (db file, run dir)."""
    run.close()
    db = paths.state_dir() / paths.DB_NAME
    with sqlite3.connect(db) as con:
        (run_dir,) = con.execute("SELECT run_dir FROM runs WHERE name='r'").fetchone()
        con.execute(
            "UPDATE attempts SET state='FAILED', klass='CODE_ERROR', ended_at=started_at, "
            "job_id='101'"
        )
    yield db, Path(run_dir)


def _copy_run(con: sqlite3.Connection, name: str) -> None:
    """A second runs row like r's, named `name`."""
    row = con.execute("SELECT * FROM runs WHERE name='r'").fetchone()
    marks = ",".join("?" * len(row))
    con.execute(f"INSERT INTO runs VALUES ({marks})", (name, *row[1:]))


def _events(run_dir: Path, value: str) -> None:
    now = 1000.0
    lines = [
        {"ts": now, "event": "started", "job_id": "101", "attempt": 0},
        {"ts": now, "event": "straggler", "step": 10, "rank": 1, "node": value,
         "seconds": 0.25, "median_s": 0.1, "ratio": 2.5, "world_size": 2},
        {"ts": now, "event": "eval", "step": 10, "name": value, "loss": 2.0,
         "perplexity": 7.4, "seconds": 0.5},
    ]  # fmt: skip
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=HOSTILE)
@example(value=LISTED[0])
@example(value=LISTED[1])
@example(value=LISTED[2])
@example(value=LISTED[3])
def test_status_shows_store_and_event_values_as_data(hostile_run, value: str) -> None:
    db, run_dir = hostile_run
    with sqlite3.connect(db) as con:
        con.execute("UPDATE attempts SET reason=?, node_list=?", (value, value))
        con.execute("UPDATE runs SET recipe=?", (value,))
        con.execute("DELETE FROM runs WHERE name != 'r'")
        # a run name the validation would refuse: a store written by someone else
        _copy_run(con, value)
    _events(run_dir, value)
    for mode, width in MODES:
        code, out, err = render(["status"], mode, width)
        assert code == 0, err
        assert_data(out, value)
        assert_data(err)
        code, out, err = render(["status", "r"], mode, width)
        assert code == 0, err
        assert_data(
            out,
            value,
            f"straggler: {value} (rank 1)",
            f"{value} 2.0000 (perplexity",
        )
        assert_data(err)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=HOSTILE)
@example(value=LISTED[0])
@example(value=LISTED[3])
def test_nodes_shows_host_names_and_reasons_as_data(hostile_run, value: str) -> None:
    db, _ = hostile_run
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM node_health")
        con.execute(
            "INSERT INTO node_health (cluster, node, failures, last_reason, last_at, last_check,"
            " measured, expected, unit) VALUES (?, ?, 2, ?, 1000.0, ?, 0.1, 0.2, ?)",
            (value, value, f"failed: {value}", value, value),
        )
    for mode, width in MODES:
        code, out, err = render(["nodes"], mode, width)
        assert code == 0, err
        assert_data(out, value, f"failed: {value}", f"0.1 / >= 0.2 {value}".rstrip())
        assert_data(err)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=HOSTILE)
@example(value="\x1b[31mred\x1b[0m\r\n[rank0]: RuntimeError: boom\x1b]8;;http://x.invalid\x07")
def test_logs_show_the_jobs_control_characters_escaped(hostile_run, value: str) -> None:
    _, run_dir = hostile_run
    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "logs" / "101-rank0.out").write_text(value, errors="surrogatepass")
    for mode, width in MODES:
        code, out, err = render(["logs", "r"], mode, width)
        assert code == 0, err
        for line in value.split("\n"):  # lines and tabs kept, the rest escaped
            assert_data(out.replace("\t", ""), line.replace("\t", ""))
        assert "\n".join(shown(x) for x in value.replace("\t", "").split("\n")) in (
            out.replace("\t", "")
        )


# A profile's text fields refuse control characters; markup, emoji codes and bidi overrides
# are printable and pass.
PRINTABLE_HOSTILE = HOSTILE.filter(lambda s: not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", s))


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=PRINTABLE_HOSTILE, stem=HOSTILE.map(lambda s: s.replace("/", "_").replace("\0", "_")))
@example(value="MI250X [/x] [link=http://x.invalid]x[/link]", stem="[rank0]:[red]dev")
@example(value="\u202eA100 :thumbs_up: [bold]", stem="\x1b[2Jdev\r")
def test_clusters_and_plan_show_profile_values_as_data(user_env, value: str, stem: str) -> None:
    import yaml

    folder = user_env / "clusters"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    data = yaml.safe_load((paths.data_dir("clusters") / "a100.yaml").read_text())
    data["gpu_type"] = value
    (folder / "hostile.yaml").write_text(yaml.safe_dump(data))
    (folder / f"{stem[:100]}.yaml").write_text(yaml.safe_dump(data))
    for mode, width in MODES:
        code, out, err = render(["clusters"], mode, width)
        assert code == 0, err
        assert_data(out, value, stem[:100])
        assert_data(err)
    code, out, err = render(["plan", "tiny", "-c", str(folder / "hostile.yaml")], "piped", None)
    assert code == 0, err
    assert_data(out, f"x 8 {value} = 8 GPUs")


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=PRINTABLE_HOSTILE.filter(lambda s: not re.search(r'[ ,;<>"/]', s)))
@example(value="[/x]")
@example(value="\u202eroot:thumbs_up:[link=http://x.invalid]")
def test_watch_banner_shows_state_dir_and_addresses_as_data(
    user_env, tmp_path: Path, monkeypatch, value: str
) -> None:
    """The state dir's path (a shared filesystem's folder name), an e-mail address and the
    SMTP host from the environment, in the lines `watch` starts with."""
    state = tmp_path / f"state-{value}"
    monkeypatch.setenv("OLMOCTL_STATE_DIR", str(state))
    monkeypatch.setenv("OLMOCTL_SMTP_HOST", f"smtp{value}")
    address = f"{value}@example.org"
    for mode, width in MODES:
        code, out, err = render(["watch", "--once", "--notify-email", address], mode, width)
        assert code == 0, err
        assert_data(err, f"log {state / 'watch.log'}", f"{address} via smtp{value}:25")
        assert_data(out)


# -------------------------------------------------------------------------- names whole
SHIPPED = {
    kind: sorted(p.stem for p in paths.data_dir(kind).glob("*.yaml"))
    for kind in ("clusters", "recipes")
}


@pytest.mark.parametrize("kind", ["clusters", "recipes"])
@pytest.mark.parametrize(("mode", "width"), [("tty", 80), ("tty", 40), ("piped", 80)])
def test_catalog_names_are_never_cut(user_env, kind: str, mode: str, width: int) -> None:
    """`dev-co…` and `fronti…` were what an 80-column terminal showed."""
    assert "dev-container" in SHIPPED["clusters"]  # the longest name, at least
    code, out, err = render([kind], mode, width)
    assert code == 0, err
    assert "…" not in out
    assert all(len(line) <= width for line in out.splitlines()), out
    words = set(re.split(r"[\s\u2502\u2503]+", out))
    assert set(SHIPPED[kind]) <= words, (set(SHIPPED[kind]) - words, out)


@pytest.mark.parametrize("width", [40, 60, 80, 100, 160])
def test_run_cluster_and_node_names_are_never_cut(hostile_run, width: int) -> None:
    """Long names in the runs table and the node table: each whole on one line (a name as
    wide as the terminal itself could only fold)."""
    db, _ = hostile_run
    long_run = "pretrain-olmo-7b-lumi-" + "x" * 8
    long_node = "nid005123.frontier.olcf.gov"
    with sqlite3.connect(db) as con:
        _copy_run(con, long_run)
        con.execute(
            "INSERT INTO node_health (cluster, node, failures, last_reason, last_at) "
            "VALUES ('dev-container', ?, 1, 'NODE_FAIL in job 101', 1000.0)",
            (long_node,),
        )
    for argv, names in ((["status"], [long_run, "tiny", "dev"]), (["nodes"], [long_node])):
        code, out, err = render(argv, "tty", width)
        assert code == 0, err
        assert "…" not in out
        words = set(re.split(r"[\s\u2502\u2503:]+", out))
        assert set(names) <= words, (argv, out)
