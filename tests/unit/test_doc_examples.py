"""Every `olmoctl ...` line in the code blocks of README.md and docs/*.md runs, and none is
refused as bad input (exit 2): docs and reality agree (issue 26 item 10).

Each example runs (in this process, as tests/conftest.py's `cli` does) against a temporary
state dir, HOME and runs root, submitting nothing: launch and sweep get --dry-run, watch
gets --once; commands with no dry mode that would submit or act on a live job (resume,
cancel, doctor, sweep --continue) and those that need a recorded sweep or node failure are
only parsed (click parses the line and runs the options' checks, nothing runs); doctor's
recipe, profile and -o are rendered too. Examples that need a run use one real local run
(`launch tiny -c local -o train.max_steps=2 --wait`) made once for the module.
Placeholders (RUN, N, ...) are replaced from the tables below, each with its reason; a
placeholder not in them fails the test, as does a table entry no example uses any more.
`-o KEY=VALUE` spans in prose are rendered too: none may be refused as an override.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from tests.conftest import REPO, Result

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OLMOCTL = str(Path(sys.executable).parent / "olmoctl")
RUN = "docs-run"  # the module fixture's run
ACCOUNT = "project_465000000"

# Examples that are not run, and why.
SKIP = {
    "olmoctl --install-completion": "writes the user's shell startup files",
    "olmoctl status <TAB>": "a TAB pressed in a shell, not a command line",
}
# Examples that show a refusal: they must exit 2, with the documented message's start.
REFUSED = {
    "olmoctl render 1b --cluster a100 --nodes 27": "olmoctl: error: train.global_batch_size "
    "(2048 sequences) is not divisible by 216 GPUs",
}
# Whole phrases replaced before the line is split (reason after each).
PHRASES = {
    # `cancel RUN | --sweep SW` names two forms of one command.
    "cancel RUN | --sweep SW": ["cancel RUN", "cancel --sweep SW"],
    # `sweep ...`: the sweep lines above it.
    "sweep ... --dry-run": ["sweep tiny -c dev --grid optim.lr=1e-4,3e-4 --dry-run"],
    # A and B: two cluster profiles.
    "--diff-cluster A B": ["--diff-cluster dev h100"],
    # `[RUN ...]`: one run or more.
    "[RUN ...]": ["[RUN]"],
    # `-o ...` / `-o KEY=VALUE ...`: any override.
    "-o KEY=VALUE ...": ["-o optim.lr=1e-3"],
    "-o ...": ["-o optim.lr=1e-3"],
}
# Placeholder words, by the option before them (None: anywhere), and why each value.
WORDS: dict[tuple[str | None, str], str] = {
    (None, "RUN"): RUN,  # the module fixture's run
    ("--name", "ev1"): "docs-new",  # README's eval example: a new run
    (None, "ev1"): RUN,  # its `status ev1`: the launch above it was a dry run here
    (None, "tiny-dev"): RUN,  # README's export example: a run of the tiny recipe
    (None, "RECIPE"): "tiny",
    (None, "RUN_DIR/spec.json"): "{runs}/" + RUN + "/spec.json",  # the fixture's run dir
    ("--name", "N"): "docs-new",  # a free name (a dry run records nothing)
    ("--name", "NEW"): "docs-new",
    ("--nodes", "N"): "1",
    ("-N", "NODES"): "1",
    ("--step", "N"): "2",  # the fixture's run saves its last step, 2
    ("--state", "S"): "COMPLETED",
    ("--cluster", "C"): "local",  # the fixture's run is on it
    ("--rank", "R"): "0",
    ("--attempt", "K"): "1",
    ("--clear", "NODE"): "node1",
    ("--out", "DIR"): "{fresh}",  # a new folder for each example
    ("--time", "T"): "00:05:00",
    ("--sweep", "SW"): "docs-sweep",
    ("--sweep", "SWEEP"): "docs-sweep",
    ("--continue", "SWEEP"): "docs-sweep",
}
# Commands (or options) with no dry mode that would submit or act on live jobs, or need
# a recorded sweep or node failure the fixture does not make: parsed only.
PARSE_ONLY = {
    "resume": "submits a new attempt",
    "cancel": "acts on a live job; the fixture's run has ended",
    "doctor": "submits a preflight job (its recipe, profile and -o are rendered instead)",
    "--continue": "submits a sweep's waiting points",
    "--sweep": "needs a recorded sweep; recording one submits jobs",
    "--clear": "needs a node with recorded failures",
}
PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z_]*|\.\.\.|<.*>)$|[A-Z]{3,}/")


@dataclass(frozen=True)
class Example:
    where: str  # FILE:LINE
    text: str  # the line as the docs write it, comment removed
    line: str  # one concrete variant, placeholders still in


def _strip_comment(text: str) -> str:
    # `  # why` or `]# why`: a comment; a '#' inside a word (a URL fragment) is not.
    m = re.search(r"(?:\s|(?<=\]))#(?:\s|$)", text)
    return (text[: m.start()] if m else text).strip()


def _lines(path: Path):
    """(line number, text) of each `olmoctl` line in a code block, continuations joined."""
    fence = None
    pending: tuple[int, str] | None = None
    for no, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = None if fence else stripped
            continue
        if fence is None or fence not in ("```", "```bash", "```sh", "```console"):
            continue
        if pending is not None:
            start, text = pending
            text += " " + stripped.rstrip("\\").strip()
            pending = (start, text) if stripped.endswith("\\") else None
            if pending is None:
                yield start, text
            continue
        text = stripped.removeprefix("$ ")
        if not (text.startswith("olmoctl ") or text == "olmoctl"):
            continue
        if text.endswith("\\"):
            pending = (no, text.rstrip("\\").strip())
        else:
            yield no, text


def _variants(text: str) -> list[str]:
    """The line as written with each optional [group] left out, and with each one in
    (one alternative of `[a | b]` at a time)."""
    groups = list(re.finditer(r"(?<=\s)\[([^\[\]]*)\]", text))
    if not groups:
        return [text]

    def with_only(keep: int | None, choice: str) -> str:
        out, last = [], 0
        for i, g in enumerate(groups):
            out.append(text[last : g.start()])
            if i == keep:
                out.append(choice)
            last = g.end()
        out.append(text[last:])
        return " ".join("".join(out).split())

    lines = [with_only(None, "")]
    for i, g in enumerate(groups):
        lines += [with_only(i, alt.strip()) for alt in g.group(1).split("|")]
    return lines


def examples() -> list[Example]:
    found = []
    for path in DOCS:
        for no, raw in _lines(path):
            text = _strip_comment(raw)
            for part in text.split(" ; "):  # `olmoctl a ; olmoctl b`
                expanded = [part]
                for phrase, subs in PHRASES.items():
                    expanded = [
                        e.replace(phrase, s) if phrase in e else e
                        for e in expanded
                        for s in (subs if phrase in e else [None])
                    ]
                for line in itertools.chain.from_iterable(_variants(e) for e in expanded):
                    found.append(Example(f"{path.relative_to(REPO)}:{no}", part, line))
    return found


ALL = examples()


# ------------------------------------------------------------------ the module's run
@dataclass(frozen=True)
class Sandbox:
    root: Path
    env: dict[str, str]

    def olmoctl(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [OLMOCTL, *argv],
            cwd=self.root / "work",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    root = tmp_path_factory.mktemp("docs")
    for sub in ("home", "work", "runs", "out"):
        (root / sub).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLMOCTL_", "SBATCH_"))}
    env.update(
        HOME=str(root / "home"),  # `~` in profiles and in README's `~/.slack-hook`
        OLMOCTL_STATE_DIR=str(root / "state"),
        OLMOCTL_CONFIG_DIR=str(root / "config"),  # no user profiles
        OLMOCTL_ACCOUNT=ACCOUNT,  # what the README says a LUMI user sets once
        OLMOCTL_SMTP_HOST="127.0.0.1",  # watch --notify-email: never reached (--once)
        PYTHONDONTWRITEBYTECODE="1",
    )
    hook = root / "home" / ".slack-hook"
    hook.write_text("https://hooks.slack.invalid/services/T0/B0/x\n")
    hook.chmod(0o600)
    # docs/sweeps.md's sweep file, as `sweep -f sweep.yaml` reads it.
    sweeps = (REPO / "docs" / "sweeps.md").read_text()
    (root / "work" / "sweep.yaml").write_text(
        re.search(r"Sweep file[^\n]*\n```yaml\n(.*?)```", sweeps, re.S).group(1)
    )
    box = Sandbox(root, env)
    launch = "launch tiny -c local --name {} -o train.max_steps=2 -o cluster.runs_root={} --wait"
    res = box.olmoctl(launch.format(RUN, root / "runs").split(), timeout=300)
    assert res.returncode == 0, res.stderr
    return box


# ------------------------------------------------------------------ making the argv
def concrete(example: Example, box: Sandbox, index: int) -> list[str]:
    # As the shell would: `~/` is HOME (the sandbox's).
    words = [re.sub(r"^~/", box.env["HOME"] + "/", w) for w in shlex.split(example.line)]
    assert words[0] == "olmoctl", example
    out: list[str] = []
    for i, word in enumerate(words[1:]):
        before = out[-1] if out else None
        value = WORDS.get((before, word), WORDS.get((None, word)))
        if value is None and PLACEHOLDER.search(word) and word != "-P":
            why = "a placeholder the tables here do not map; add it to WORDS or PHRASES"
            pytest.fail(f"{example.where}: {word!r} in {example.line!r} is {why}")
        word = value if value is not None else word
        if "{fresh}" in word:
            word = str(box.root / "out" / f"{index}-{i}")
        out.append(word.replace("{runs}", str(box.root / "runs")))
    return out


def parse_only(argv: list[str]) -> str | None:
    return next((why for key, why in PARSE_ONLY.items() if key in argv), None)


def parse(argv: list[str]) -> tuple[int, str]:
    """Click's parse of the line (options' checks included), nothing run: exit 2 with
    click's message when it would be refused as usage."""
    from olmoctl.cli.commands import build
    from olmoctl.errors import UsageError

    cmd = build(argv[0])
    if cmd is None:
        return 2, f"no such command {argv[0]!r}"
    try:
        cmd.make_context(argv[0], argv[1:], resilient_parsing=False)
    except (click.UsageError, UsageError) as e:
        return 2, str(e)
    return 0, ""


def render_of_doctor(argv: list[str]) -> list[str]:
    """`doctor RECIPE --cluster C -o ...` as `render RECIPE --cluster C -o ...`."""
    recipe, rest, it = "tiny", [], iter(argv[1:])  # tiny: doctor's default recipe
    for word in it:
        if word in ("--cluster", "-c", "-o", "--override"):
            rest += [word, next(it)]
        elif word in ("-N", "--nodes", "--timeout"):
            next(it)
        elif not word.startswith("-"):
            recipe = word
    return ["render", recipe, *rest]


def run(argv: list[str], box: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys) -> Result:
    """`olmoctl ARGV` in this process, in the sandbox's environment and folder."""
    from olmoctl.cli.main import main

    for var in [v for v in os.environ if v.startswith(("OLMOCTL_", "SBATCH_"))]:
        monkeypatch.delenv(var)
    for var in ("HOME", *(v for v in box.env if v.startswith("OLMOCTL_"))):
        monkeypatch.setenv(var, box.env[var])
    monkeypatch.chdir(box.root / "work")
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


# ------------------------------------------------------------------ the tests
def test_examples_are_found() -> None:
    texts = {e.text for e in ALL}
    assert len(ALL) > 60, len(ALL)
    assert any(t.startswith("olmoctl render 7b --cluster lumi") for t in texts)
    # continuation lines are joined; optional groups expanded one at a time
    assert any("eval.held_out_fraction=0.05" in e.line for e in ALL)
    assert {"olmoctl show RUN --config", "olmoctl show RUN --env"} <= {e.line for e in ALL}


def test_tables_are_used() -> None:
    texts = " ".join(e.text for e in ALL)
    lines = [shlex.split(e.line) for e in ALL]
    stale = [k for k in [*SKIP, *REFUSED] if k not in {e.text for e in ALL}]
    stale += [k for k in PHRASES if k not in texts]
    stale += [w for w in WORDS if not any(w[1] in ws for ws in lines) and w[1] not in texts]
    assert not stale, f"table entries no example uses any more: {stale}"


@pytest.mark.parametrize("example", ALL, ids=[f"{e.where}:{e.line}" for e in ALL])
def test_example_is_not_refused(
    example: Example, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    if example.text in SKIP:
        pytest.skip(SKIP[example.text])
    argv = concrete(example, sandbox, ALL.index(example))
    shown = f"{example.where}: {example.line}\n  ran: olmoctl {shlex.join(argv)}"
    if parse_only(argv):
        code, err = parse(argv)
        assert code != 2, f"{shown}\n  (parsed only: {parse_only(argv)})\n{err}"
        if argv[0] != "doctor":
            return
        argv = render_of_doctor(argv)
        shown += f"\n  rendered: olmoctl {shlex.join(argv)}"
    elif argv[0] in ("launch", "sweep") and "--dry-run" not in argv:
        argv.append("--dry-run")
    elif argv[0] == "watch":
        argv.append("--once")
    res = run(argv, sandbox, monkeypatch, capsys)
    if example.text in REFUSED:
        assert res.code == 2 and res.err.startswith(REFUSED[example.text]), shown
        return
    assert res.code != 2, f"{shown}\nexit 2:\n{res.err}"
    assert "Traceback" not in res.err, f"{shown}\n{res.err}"


# ------------------------------------------------------------------ `-o` in prose
def prose_overrides() -> list[tuple[str, list[str]]]:
    """Each `-o KEY=VALUE ...` code span outside code blocks, as argv words."""
    found = []
    for path in DOCS:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for span in sorted(set(re.findall(r"`(-o [^`]+)`", text))):
            words = shlex.split(span)
            if any(w.endswith(("=...", "=value")) or "=" not in w for w in words[1::2]):
                continue  # the syntax itself, or a key named in a sentence
            found.append((f"{path.relative_to(REPO)}: {span}", words))
    return found


PROSE = prose_overrides()


@pytest.mark.parametrize(("where", "words"), PROSE, ids=[w for w, _ in PROSE])
def test_override_in_prose_is_known(
    where: str, words: list[str], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # A big recipe on a GPU site, where every key means something. The span's sentence
    # may be about another shape (a batch that 8 nodes do not divide): only a refusal of
    # the overrides themselves (an unknown key, a bad value: "-o ...: why") fails.
    argv = ["render", "7b", "--cluster", "h100", "--nodes", "8", *words]
    res = run(argv, sandbox, monkeypatch, capsys)
    assert not res.err.startswith("olmoctl: error: -o "), f"{where}\n{res.err}"
    assert "Traceback" not in res.err, f"{where}\n{res.err}"


def test_parse_only_still_refuses_bad_lines() -> None:
    # What the parsed-only examples rely on: an unknown option or a value out of range is
    # exit 2 without running anything.
    assert parse(["resume", RUN, "--nodes", "0"])[0] == 2
    assert parse(["cancel", "--sweeep", "x"])[0] == 2
    assert parse(["doctor", "--cluster", "lumi", "-N", "1"]) == (0, "")
    doctor = ["doctor", "7b", "--cluster", "lumi", "-N", "2", "-o", "a=b"]
    assert render_of_doctor(doctor) == ["render", "7b", "--cluster", "lumi", "-o", "a=b"]


# ------------------------------------------------------------------ docs/trust.md
def test_trust_doc_is_linked_and_names_real_code() -> None:
    trust = (REPO / "docs" / "trust.md").read_text()
    assert "docs/trust.md" in (REPO / "README.md").read_text()
    assert "`trust.md`" in (REPO / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:\w+/)*\w+\.py)`", trust))
    assert len(named) > 10, named
    code = REPO / "olmoctl"
    for name in sorted(named):
        found = [REPO / name, code / name, *(code.rglob(name) if "/" not in name else [])]
        assert any(p.is_file() for p in found), f"docs/trust.md names {name}: no such file"
