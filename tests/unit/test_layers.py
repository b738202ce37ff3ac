"""Imports point one way (docs/architecture.md): cli -> core -> store/backends -> schemas;
train stands alone. Read from the source with ast, lazy (in-function) imports included, so
a rule cannot be dodged by importing late; `if TYPE_CHECKING:` imports are not imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "olmoctl"
# layer -> the layers it must never import
FORBIDDEN = {
    "train": ("cli", "core", "backends", "store"),
    "backends": ("cli", "core"),
    "store": ("cli", "core", "backends"),
    "core": ("cli",),
    "schemas": ("cli", "core", "backends", "store", "train"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The olmoctl modules `name` imports (a package's submodule when it names one)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_layers_import_only_downwards(graph: dict[str, set[str]]) -> None:
    bad = [
        f"{mod} imports {dep}"
        for mod, deps in sorted(graph.items())
        for dep in sorted(deps)
        if _layer(dep) in FORBIDDEN.get(_layer(mod), ())
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # Tarjan's strongly connected components: any with more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_rules_see_real_imports(graph: dict[str, set[str]]) -> None:
    """The parser itself works: known edges are found, lazy ones included."""
    assert "olmoctl.backends.base" in graph["olmoctl.backends.registry"]
    assert "olmoctl.backends.slurm" in graph["olmoctl.backends.registry"]  # lazy
    assert "olmoctl.core.launch" in graph["olmoctl.core.sweep.arrays"]  # `from pkg import mod`
