"""Bounded reading and parsing of everything a user (or a run directory) hands olmoctl:
profiles, recipes, sweep files, `-o`/`--grid`/`--sample` values, spec.json, record.json.

Three limits, each checked before the work it guards: size (at most LIMIT + 1 bytes are
read), nesting depth (counted while YAML is composed, so no RecursionError), and the size of
the data once YAML aliases are expanded (counted on the composed node graph, memoized, so an
alias bomb is refused in microseconds, before anything is constructed or validated).
Shared by the launcher and the job (train/runtime/config.py), hence in schemas/.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from olmoctl.errors import UsageError, shown, shown_plain
from olmoctl.fileread import Refused, read_head

KiB = 1 << 10
MiB = 1 << 20


class InputTooLarge(UsageError):
    """Over a size, depth or expansion limit."""


class NotYAML(UsageError):
    """The text is not YAML at all (a syntax error): an -o value is then kept as text."""


@dataclass(frozen=True)
class Limits:
    size: int  # bytes (files) or characters (values)
    depth: int = 64  # nesting of lists/mappings; real configs use fewer than 10
    nodes: int = 1_000_000  # scalars + collections once aliases are expanded


FILE = Limits(size=1 * MiB)  # a profile, recipe or sweep file
VALUE = Limits(size=64 * KiB, nodes=100_000)  # one -o, --grid or --sample value
RUN_FILE = Limits(size=16 * MiB)  # spec.json / record.json read back from a run directory


def _size_text(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n // KiB} KiB"


# ------------------------------------------------------------------------------ reading
def read_text(
    path: str | os.PathLike[str], what: str, limits: Limits = FILE, *, follow: bool = True
) -> str:
    """The file's text, refused in one line when it is not a regular file, larger than the
    limit (only limit + 1 bytes are read) or not UTF-8. `what`: "cluster file" etc.
    `follow`: a symbolic link is followed (a path the user named); False for a file in a
    run directory, where a link is refused (olmoctl.fileread)."""
    p = Path(path)
    at = f"{what} {shown_plain(p)}"
    try:
        st = p.stat() if follow else p.lstat()
    except FileNotFoundError:
        raise UsageError(f"{at} does not exist") from None
    except OSError as e:
        raise UsageError(f"{at}: cannot read: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{at} is a directory; give a file")
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(f"{at} is a symbolic link; olmoctl does not follow links here")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{at} is not a regular file")
    try:
        data = read_head(p, limits.size + 1, follow=follow)  # never blocks on a FIFO
    except OSError as e:
        raise UsageError(f"{at}: cannot read: {e.strerror}") from None
    except Refused:  # swapped since the look above
        raise UsageError(f"{at} changed while being read") from None
    if len(data) > limits.size:
        raise InputTooLarge(
            f"{at} is larger than {_size_text(limits.size)}, the limit for such a file"
        )
    return decode(data, at)


def decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = data[e.start]
        raise UsageError(
            f"{where} is not UTF-8 text (byte 0x{bad:02x} at offset {e.start}); "
            "is it a binary file?"
        ) from None


def check_value_size(text: str, where: str, limits: Limits = VALUE) -> str:
    if len(text) > limits.size:
        raise InputTooLarge(
            f"{where}: the value is {len(text):,} characters; the limit is {limits.size:,}"
        )
    return text


# ------------------------------------------------------------------------------ YAML
class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than `max_depth` while composing."""

    max_depth = FILE.depth

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# ------------------------------------------------------------------ duplicate keys
MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping: plain YAML keeps the last one, silently."""

    fatal = True  # not "this is not YAML": an -o value is refused, not kept as text


class UniqueKeyLoader(BoundedLoader):
    """BoundedLoader, refusing duplicate keys (every file and value olmoctl reads).

    YAML merge keys (`<<: *base`, `<<: [*a, *b]`) are accepted, as site profiles use them:
    a key of the mapping itself overrides a merged one (YAML's merge semantics), so only a
    key written twice in the mapping itself is a duplicate. The merged data is counted by
    expanded_size like any alias, before anything is constructed."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._checked: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """node.value with its merges in place, ordered so that the last pair of a key wins
        (construct_mapping keeps the last): merged pairs first, the last source of a merge
        list first (`<<: [*a, *b]`: a's keys win over b's), then the mapping's own pairs.
        PyYAML's own flatten_mapping keeps the first pair of a key after flattening, by the
        id() of the key's text, so a key that a merged mapping overrides in itself comes out
        as its source's value or its own depending on string interning."""
        if id(node) in self._checked:
            return  # flattened already (a node is flattened in place, once)
        self._checked.add(id(node))
        _refuse_duplicates(self, node)  # its own keys, before merged ones join them
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                if key_node.tag == "tag:yaml.org,2002:value":  # as SafeConstructor does
                    key_node.tag = "tag:yaml.org,2002:str"
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else None
            for source in reversed(sources) if sources is not None else [value_node]:
                if not isinstance(source, yaml.MappingNode):
                    raise MergeError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"<< merges a mapping or a list of mappings, not a {source.id}",
                        source.start_mark,
                    )
                self.flatten_mapping(source)
                merged.extend(source.value)
        node.value = merged + own


class MergeError(yaml.constructor.ConstructorError):
    fatal = True  # `<<` with something else than mappings: a mistake, not plain text


def _refuse_duplicates(loader: UniqueKeyLoader, node: yaml.MappingNode) -> None:
    first_line: dict[Any, int] = {}
    merge = object()  # `<<` given twice is a duplicate too (a quoted "<<" is a plain key)
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            key: Any = merge
        else:
            key = loader.construct_object(key_node, deep=True)
        try:
            seen = first_line.get(key)
        except TypeError:  # an unhashable key: construct_mapping names that error
            continue
        if seen is not None:
            name = "<<" if key is merge else shown(key, 60)
            raise DuplicateKeyError(
                None, None, f"duplicate key {name} (first on line {seen})", key_node.start_mark
            )
        first_line[key] = key_node.start_mark.line + 1


class TooLarge(ValueError):
    pass


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes `root` stands for once aliases are expanded (an alias is the same node
    object twice, so sizes are memoized per node: linear in the document, however many
    times it multiplies). Raises TooLarge above `limit`, ValueError on a recursive alias."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise ValueError("an alias refers to the collection it is in")
        busy.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
        busy.discard(key)
        if total > limit:
            raise TooLarge(total)
        sizes[key] = total
        return total

    return size(root)


def load_yaml(
    text: str, where: str, limits: Limits = FILE, loader: type[BoundedLoader] = BoundedLoader
) -> Any:
    """YAML `text` as data, within `limits`; a UsageError naming `where` (and the line)
    otherwise: InputTooLarge over a limit. Size is the caller's (read_text,
    check_value_size); `where` is quoted already (shown_plain, shown)."""
    bounded = type("Loader", (loader,), {"max_depth": limits.depth})
    try:
        ld = bounded(text)  # the reader refuses control characters here already
    except yaml.YAMLError as e:
        raise NotYAML(_yaml_problem(e, where)) from None
    try:
        try:
            node = ld.get_single_node()
        except yaml.YAMLError as e:
            raise NotYAML(_yaml_problem(e, where)) from None
        except _TooDeep as e:
            at = f"{where}:{e.line}"
            raise InputTooLarge(f"{at}: nested more than {limits.depth} levels deep") from None
        if node is None:
            return None
        try:
            expanded_size(node, limits.nodes)
        except TooLarge:
            raise InputTooLarge(
                f"{where}: YAML anchors and aliases expand to more than {limits.nodes:,} "
                "values; write the data out instead"
            ) from None
        except ValueError as e:
            raise InputTooLarge(f"{where}: {e}") from None
        try:
            return ld.construct_document(node)
        except yaml.YAMLError as e:
            # A loader's own refusals (fatal: a duplicate key) are not "not YAML".
            kind = UsageError if getattr(e, "fatal", False) else NotYAML
            raise kind(_yaml_problem(e, where)) from None
        except ValueError as e:  # e.g. an integer of more than 4300 digits
            raise UsageError(f"{where}: {shown(str(e), 200)}") from None
    finally:
        ld.dispose()


def _yaml_problem(e: yaml.YAMLError, where: str) -> str:
    mark = getattr(e, "problem_mark", None)
    at = f"{where}:{mark.line + 1}" if mark is not None else where
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if "\n" in problem or len(problem) > 200:
        problem = shown(problem, 200)
    return f"{at}: malformed YAML: {problem}"


# ------------------------------------------------------------------------------ JSON
def load_json(text: str, where: str, limits: Limits = RUN_FILE) -> Any:
    """JSON `text` as data, no deeper than `limits.depth` (JSON has no aliases, and its size
    is the caller's)."""
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_int=_bounded_int)
    except _DuplicateJSONKey as e:
        raise UsageError(f"{where}: duplicate key {shown(e.args[0], 60)}") from None
    except _HugeJSONInt as e:
        raise InputTooLarge(
            f"{where}: an integer of {e.args[0]} digits (at most {JSON_INT_DIGITS})"
        ) from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{where}:{e.lineno}: not valid JSON: {e.msg}") from None
    except RecursionError:
        raise InputTooLarge(f"{where}: nested more than {limits.depth} levels deep") from None
    if depth(data, limits.depth) > limits.depth:
        raise InputTooLarge(f"{where}: nested more than {limits.depth} levels deep")
    return data


class _DuplicateJSONKey(Exception):
    pass


# Digits of a JSON integer: int64 has 19; Python refuses above 4300 with a ValueError, and
# converting long ones costs quadratic time.
JSON_INT_DIGITS = 40


class _HugeJSONInt(Exception):
    pass


def _bounded_int(text: str) -> int:
    if len(text) > JSON_INT_DIGITS + 1:  # (+1: a minus sign)
        raise _HugeJSONInt(len(text.lstrip("-")))
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a key given twice are refused, as in YAML (json keeps the last)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateJSONKey(key)
        out[key] = value
    return out


def depth(data: Any, stop: int) -> int:
    """Nesting depth of plain data (iterative: no recursion on hostile input), counted up
    to `stop` + 1."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        item, d = todo.pop()
        deepest = max(deepest, d)
        if d > stop:
            return d
        if isinstance(item, dict):
            todo.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, d + 1) for v in item)
    return deepest
