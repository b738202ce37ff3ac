"""Imports point one way (docs/architecture.md): cli -> core -> store/backends -> schemas;
train stands alone. Inside core and train, the subpackages are ordered too (ORDER below):
each imports only those after it. Read from the source with ast, lazy (in-function) imports
included, so a rule cannot be dodged by importing late; `if TYPE_CHECKING:` imports are not
imports."""

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

# Inside a layer, its subpackages from the top down: a subpackage imports only from those
# after it (a tuple holds siblings, which import none of each other). A module directly in
# the layer's folder (train's entry points, run.py, trainer.py) stands above all of them.
ORDER = {
    "core": ["supervise", "sweep", "doctor", "plan", "outputs", "launch", "records", "track"],
    "train": ["burnin", "observe", ("checkpoint", "model", "data"), "runtime"],
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


def _rank(module: str) -> tuple[str, int, str] | None:
    """(layer, rank, subpackage) of a module inside an ordered layer; rank -1 for the
    layer's own top-level modules; None outside the ordered layers."""
    parts = module.split(".")
    if len(parts) < 3 or parts[1] not in ORDER:
        return None
    sub = parts[2]
    for rank, entry in enumerate(ORDER[parts[1]]):
        if sub in (entry if isinstance(entry, tuple) else (entry,)):
            return parts[1], rank, sub
    return parts[1], -1, sub


def test_every_subpackage_is_placed() -> None:
    """A new subpackage of core or train must be given its place in ORDER."""
    for layer, order in ORDER.items():
        placed = {s for e in order for s in (e if isinstance(e, tuple) else (e,))}
        found = {p.name for p in (PACKAGE / layer).iterdir() if (p / "__init__.py").is_file()}
        assert found == placed, f"{layer}: folders {sorted(found)} vs ORDER {sorted(placed)}"


def test_subpackages_import_only_downwards(graph: dict[str, set[str]]) -> None:
    bad = []
    for mod, deps in sorted(graph.items()):
        here = _rank(mod)
        if here is None or here[1] == -1:
            continue
        for dep in sorted(deps):
            there = _rank(dep)
            if there is None or there[0] != here[0] or there[2] == here[2]:
                continue
            if there[1] <= here[1]:  # upwards, or a sibling
                bad.append(f"{mod} imports {dep}")
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
    assert "olmoctl.core.launch.submit" in graph["olmoctl.core.sweep.arrays"]  # from pkg import
    assert "olmoctl.core.track.runs" in graph["olmoctl.core.supervise.watch"]


def test_the_order_rule_ranks_subpackages() -> None:
    """The subpackage rule itself: ranks grow downwards; top-level modules rank above all."""
    assert _rank("olmoctl.core.track.status") == ("core", 7, "track")
    launch, watch = _rank("olmoctl.core.launch.submit"), _rank("olmoctl.core.supervise.watch")
    assert launch is not None and watch is not None and launch[1] > watch[1]
    assert _rank("olmoctl.train.run") == ("train", -1, "run")
    assert _rank("olmoctl.cli.main") is None
