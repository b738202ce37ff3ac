"""docs/architecture.md's Layout block cannot drift from the tree: every module and package
under olmoctl/ is named there in its own folder, and every name there exists.

The block is read as an indented tree: an entry is a line whose first words are file or
folder names (`name.py`, `name/`, or a comma-separated list of them, optionally followed by
a colon); its folder is the nearest entry above it with less indentation. Other lines are
descriptions and are skipped."""

from __future__ import annotations

import re

from tests.conftest import REPO

DOC = REPO / "docs" / "architecture.md"
NAME = r"[a-z_][a-z0-9_]*(?:\.py|/)"
ENTRY = re.compile(rf"^( +)({NAME}(?:, {NAME})*):?(?: +|$)")


def _block() -> list[str]:
    text = DOC.read_text()
    layout = text.split("## Layout", 1)[1]
    return layout.split("```", 2)[1].splitlines()


def named_paths(lines: list[str]) -> list[str]:
    """Every path the olmoctl/ subtree of the block names, relative to the repo."""
    out: list[str] = []
    start = lines.index("olmoctl/")
    stack: list[tuple[int, str]] = [(0, "olmoctl/")]
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break  # the next top-level entry: the olmoctl/ subtree is over
        m = ENTRY.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        assert stack, f"entry outside olmoctl/: {line!r}"
        parent = stack[-1][1]
        assert parent.endswith("/"), f"{line.strip()!r} is indented under the file {parent}"
        for name in m.group(2).split(", "):
            out.append(parent + name)
        if m.group(2).endswith("/") and "," not in m.group(2):
            stack.append((indent, parent + m.group(2)))
    return out


def tree() -> set[str]:
    """Modules (but __init__ / __main__) and packages under olmoctl/, as the block names them."""
    found = set()
    for path in (REPO / "olmoctl").rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        if path.name == "__init__.py":
            if path.parent != REPO / "olmoctl":
                found.add(rel.rsplit("/", 1)[0] + "/")
        elif path.name != "__main__.py":
            found.add(rel)
    return found


def test_the_parser_reads_nesting() -> None:
    lines = ["olmoctl/", "  a/          x", "    b.py      y", "                more y", "  c.py"]
    assert named_paths(lines) == ["olmoctl/a/", "olmoctl/a/b.py", "olmoctl/c.py"]
    lines = ["olmoctl/", "  a/", "    x/", "      y.py, z.py  both", "    w.py: words"]
    assert named_paths(lines) == [
        "olmoctl/a/",
        "olmoctl/a/x/",
        "olmoctl/a/x/y.py",
        "olmoctl/a/x/z.py",
        "olmoctl/a/w.py",
    ]


def test_every_module_is_named_in_its_folder() -> None:
    missing = sorted(tree() - set(named_paths(_block())))
    assert not missing, f"not in docs/architecture.md's Layout: {missing}"


def test_every_name_exists() -> None:
    named = named_paths(_block())
    gone = sorted(p for p in named if not (REPO / p).exists() and not p.endswith("__main__.py"))
    gone += sorted(p for p in named if p.endswith("__main__.py") and not (REPO / p).exists())
    assert not gone, f"docs/architecture.md's Layout names what is not there: {gone}"
    dupes = sorted({p for p in named if named.count(p) > 1})
    assert not dupes, f"named twice: {dupes}"
