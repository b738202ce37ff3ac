"""The header's re-render hint gives back the exact script (overrides included, none of
their text in the header), and a broken template is one line naming its file and line."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from olmoctl import paths
from olmoctl.core.launch import render, specs
from olmoctl.core.launch import submit as launch
from olmoctl.store import Store
from tests.unit.test_store import FakeBackend

HINT = "# Re-render instead of editing: "
NOTE = "hello world; ok"  # user text: it may reach the script body (quoted), never the header
OVERRIDES = [
    "cluster.account=project_465000000",
    "optim.lr=3e-4",
    "model.n_layers=3",
    f"cluster.env.NOTE={NOTE}",
]


def _hint(script: str) -> list[str]:
    (line,) = [ln for ln in script.splitlines() if ln.startswith(HINT)]
    argv = shlex.split(line.removeprefix(HINT))
    assert argv[0] == "olmoctl"
    return argv[1:]


def _header(script: str) -> str:
    """The comment lines at the top (the #SBATCH lines carry checked values, not comments)."""
    lines = script.splitlines()[1:]
    return "\n".join(
        ln for ln in lines[: next(i for i, ln in enumerate(lines) if not ln.startswith("# "))]
    )


@pytest.fixture
def launched(user_env: Path, tmp_path: Path) -> Path:
    """A run launched on lumi (needs an account) with -o overrides: its attempt-1 script."""
    store = Store()
    spec = launch.prepare(
        store, "tiny", "lumi", nodes=1, name="hint", time_limit=None,
        overrides=[f"cluster.runs_root={tmp_path / 'runs'}", *OVERRIDES],
    )  # fmt: skip
    launch.submit_attempt(store, spec, FakeBackend(), new_run=True)
    return Path(spec.run_dir) / "scripts" / "attempt-1.sh"


def test_the_hint_renders_the_identical_script(cli, launched: Path) -> None:
    script = launched.read_text()
    assert NOTE in script and NOTE not in _header(script)  # no user text in the header
    assert _header(script).count("\n") == 2  # "Rendered by", the hint and its note
    # The run dir (a temp path, which may hold any digit) is the one checked value there.
    header = _header(script).replace(str(launched.parents[1]), "RUN_DIR")
    for o in OVERRIDES:
        assert o.split("=", 1)[1] not in header
    res = cli(*_hint(script))
    assert res.code == 0, res.err
    assert res.out == script  # nothing time-dependent in it: byte for byte


def test_the_plain_hint_renders_the_plain_script(cli, launched: Path) -> None:
    run_dir = launched.parents[1]
    res = cli("render", "--from-spec", str(run_dir), "--plain")  # a run directory works too
    assert res.code == 0, res.err
    assert _hint(res.out) == ["render", "--from-spec", f"{run_dir}/spec.json", "--plain"]
    again = cli(*_hint(res.out))
    assert again.code == 0 and again.out == res.out


def test_the_old_hint_failed_for_lack_of_the_overrides(cli, launched: Path) -> None:
    """What the header used to say (recipe, cluster, nodes): without -o, no account."""
    res = cli("render", "tiny", "--cluster", "lumi", "--nodes", "1")
    assert res.code == 2 and "account" in res.err


def test_from_spec_takes_nothing_else(cli, launched: Path) -> None:
    spec = str(launched.parents[1] / "spec.json")
    res = cli("render", "--from-spec", spec, "-o", "optim.lr=1", "--nodes", "2")
    assert res.code == 2
    assert "it goes without --nodes, -o" in res.err and len(res.err.splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a run spec"),
        ('{"name": "x"}', "recipe"),
    ],
)
def test_a_bad_spec_file_is_one_line(
    cli, tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_text(content)
    res = cli("render", "--from-spec", str(path))
    assert res.code == 2, res.err
    assert expected in res.err and len(res.err.splitlines()) == 1


def test_a_custom_slot_has_no_hint(user_env: Path) -> None:
    """doctor's preflight script: `render` cannot give it back, so no hint."""
    spec = specs.resolve("tiny", "dev", nodes=1)
    assert HINT not in render.render(spec, task_command="python -m something")
    assert render.rerender_args(spec) == [f"{spec.run_dir}/spec.json"]


# ------------------------------------------------------------------ a broken template
@pytest.fixture
def template(monkeypatch, tmp_path: Path):
    """A copy of the shipped template that a test breaks; the cached environment reset."""
    folder = tmp_path / "templates"
    folder.mkdir()
    shipped = (paths.data_dir("templates") / render.TEMPLATE).read_text()
    data_dir = paths.data_dir
    monkeypatch.setattr(
        paths, "data_dir", lambda kind: folder if kind == "templates" else data_dir(kind)
    )
    render._env.cache_clear()

    def write(old: str, new: str) -> Path:
        assert old in shipped
        path = folder / render.TEMPLATE
        path.write_text(shipped.replace(old, new, 1))
        return path

    yield write
    render._env.cache_clear()


def _line_of(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("{{ cluster.partition | word }}", "{{ cluster.partition | }}", "TemplateSyntaxError"),
        ("{%- if cluster.qos %}", "{%- if cluster.qos %}{% endfor %}", "TemplateSyntaxError"),
        ("{{ cluster.cpus_per_task }}", "{{ cpus_nowhere }}", "UndefinedError"),
        ("{{ cluster.tasks_per_node }}", "{{ cluster.no_such_key }}", "UndefinedError"),
    ],
)
def test_a_broken_template_is_one_line_with_its_file_and_line(
    cli, template, old: str, new: str, kind: str
) -> None:
    path = template(old, new)
    res = cli("render", "tiny", "--cluster", "dev")
    assert res.code == 1, res.err  # olmoctl's own file: a failure, not bad input
    assert len(res.err.splitlines()) == 1 and "Traceback" not in res.err
    assert f"{path}:{_line_of(path, new)}: {kind}" in res.err, res.err
