"""What code and data a run used: olmoctl's version, git commit and diff, a hash of its source,
and bounded fingerprints of data files. Standard library only: the launcher (olmoctl.core)
and the job (olmoctl.train) both import it.

Fingerprint of a file (`fingerprint_file`): its size, and
  - files up to FULL_HASH_LIMIT (8 MiB): the sha256 of the whole file (method "sha256");
  - larger files: the sha256 of a header (method name + size), the first MiB, SAMPLE_BLOCKS
    (16) blocks of 64 KiB at evenly spaced offsets, and the last MiB (method "sampled-v1"):
    at most 3 MiB read per file, whatever its size.
A change of size, or of any byte in the sampled ranges, changes the fingerprint; a change
elsewhere in a file over 8 MiB can go unseen (the price of not reading terabytes).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from olmoctl import fileread

FULL_HASH_LIMIT = 8 * 1024 * 1024
EDGE_BYTES = 1024 * 1024
SAMPLE_BLOCKS = 16
SAMPLE_BYTES = 64 * 1024
SAMPLED_METHOD = "sampled-v1"
_READ = 1024 * 1024

# The parts of a checkout that make up olmoctl: what the job runs and what renders its script.
SOURCE_PATHS = ("olmoctl", "templates", "clusters", "recipes", "pyproject.toml")
MAX_DIFF_BYTES = 4 * 1024 * 1024


def _sha256_range(f: Any, h: Any, start: int, length: int) -> None:
    f.seek(start)
    while length > 0:
        chunk = f.read(min(_READ, length))
        if not chunk:
            break
        h.update(chunk)
        length -= len(chunk)


def sample_offsets(size: int) -> list[tuple[int, int]]:
    """(offset, length) ranges that a sampled fingerprint reads, in order."""
    ranges = [(0, EDGE_BYTES)]
    span = size - SAMPLE_BYTES
    ranges += [(span * i // (SAMPLE_BLOCKS + 1), SAMPLE_BYTES) for i in range(1, SAMPLE_BLOCKS + 1)]
    ranges.append((size - EDGE_BYTES, EDGE_BYTES))
    return ranges


def fingerprint_file(path: str | os.PathLike[str], *, follow: bool = True) -> dict[str, Any]:
    """{"name", "path", "size", "sha256", "method"}; {"path", "error"} if unreadable or not
    a regular file (a FIFO would block: olmoctl.fileread). `follow`: a symbolic link is
    followed (data files often are links); False in a run directory."""
    p = Path(path)
    out: dict[str, Any] = {"name": p.name, "path": str(p)}
    try:
        with fileread.opened(p, follow=follow) as (fd, size), os.fdopen(os.dup(fd), "rb") as f:
            h = hashlib.sha256()
            if size <= FULL_HASH_LIMIT:
                _sha256_range(f, h, 0, size)
                method = "sha256"
            else:
                h.update(f"{SAMPLED_METHOD}:{size}\n".encode())
                for start, length in sample_offsets(size):
                    _sha256_range(f, h, start, length)
                method = SAMPLED_METHOD
    except OSError as e:
        return {**out, "error": e.strerror or str(e)}
    except fileread.Refused as e:
        return {**out, "error": str(e)}
    return {**out, "size": size, "sha256": h.hexdigest(), "method": method}


def fingerprint_files(
    paths: Iterable[str | os.PathLike[str]], *, follow: bool = True
) -> dict[str, Any]:
    """Every file's fingerprint in order, and one sha256 over all of them (order matters:
    it numbers the instances)."""
    files = [fingerprint_file(p, follow=follow) for p in paths]
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f['name']} {f.get('size')} {f.get('sha256')}\n".encode())
    return {"files": files, "sha256": h.hexdigest()}


# ------------------------------------------------------------------------------ code
def package_root() -> Path:
    """The folder holding the olmoctl package (a checkout's top level, or site-packages)."""
    return Path(__file__).resolve().parent.parent


def _git(root: Path, *args: str) -> str | None:
    try:
        p = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=20,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.decode("utf-8", "replace") if p.returncode == 0 else None


def source_sha256(root: Path | None = None) -> str:
    """sha256 over olmoctl's own files (path + bytes, sorted): the same hash means the same
    code, with or without git (an installed wheel carries its data under olmoctl/_data)."""
    root = root or package_root()
    h = hashlib.sha256()
    files: list[Path] = []
    for part in SOURCE_PATHS:
        p = root / part
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [
                q
                for q in p.rglob("*")
                if q.is_file()
                and "__pycache__" not in q.parts
                and q.suffix not in (".pyc", ".pyo")
                and not q.name.startswith(".")
            ]
    for q in sorted(files):
        try:
            data = q.read_bytes()
        except OSError:
            continue
        h.update(f"{q.relative_to(root).as_posix()} {len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()


def code_version(with_diff: bool = False) -> dict[str, Any]:
    """{"version", "source_sha256", "git": {"commit", "dirty", "diff_sha256"[, "diff"]}|None}.

    git is None unless olmoctl runs from a git checkout. The diff is `git diff HEAD` of
    olmoctl's own paths plus their untracked files' names; `diff` is included only when
    asked (it can be long), `diff_sha256` always."""
    from olmoctl import __version__

    root = package_root()
    out: dict[str, Any] = {"version": __version__, "source_sha256": source_sha256(root)}
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root:
        out["git"] = None
        return out
    commit = (_git(root, "rev-parse", "HEAD") or "").strip() or None
    diff = _git(root, "diff", "HEAD", "--no-color", "--", *SOURCE_PATHS) or ""
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--", *SOURCE_PATHS)
    for name in (untracked or "").splitlines():
        diff += f"untracked: {name}\n"
    if len(diff.encode()) > MAX_DIFF_BYTES:
        diff = diff.encode()[:MAX_DIFF_BYTES].decode("utf-8", "ignore") + "\n[diff truncated]\n"
    git: dict[str, Any] = {
        "commit": commit,
        "dirty": bool(diff),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
    }
    if with_diff:
        git["diff"] = diff
    out["git"] = git
    return out
