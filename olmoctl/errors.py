"""Errors that reach the user as one line and exit code 2 (bad input) or 1 (failure)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class OlmoctlError(Exception):
    """An expected failure: printed as one line, no traceback."""

    exit_code = 1


class UsageError(OlmoctlError):
    """Bad input from the user (a file, a key, a value): exit code 2."""

    exit_code = 2


# ------------------------------------------------------------------ quoting a user's value
SHOWN_LIMIT = 100  # characters of a value that an error message quotes


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """`value` as an error message may quote it: repr-like (newlines and control characters
    escaped, so the message stays one line), cut to about `limit` characters with an ellipsis
    and the original length. Every message that quotes a user's value goes through this."""
    if isinstance(value, str):
        if len(value) <= limit and value.isprintable():
            return repr(value)  # the common case reads exactly as before
        return _shown_str(value, limit)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        # repr() of a huge int is slow, and refused above 4300 digits
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    import reprlib

    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit
    r.maxlevel = 3
    text = r.repr(value)
    text = visible(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def visible(text: str) -> str:
    """`text` with every character that is not printable (C0/C1 controls, ESC, CR, BEL,
    bidi overrides, zero-width marks...) as its escape (\\x1b, \\r, \\u202e): nothing left
    in it can act on a terminal. Error messages and everything the CLI prints (cli/text.py)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shown_str(value: str, limit: int) -> str:
    out: list[str] = []
    used = 0
    for c in value:
        if c in "\\'":
            piece = "\\" + c
        elif c.isprintable():
            piece = c
        else:
            piece = repr(c)[1:-1]  # \n, \t, \x1b, \u200b ...
        if used + len(piece) > limit:
            return f"'{''.join(out)}…' ({len(value)} characters)"
        out.append(piece)
        used += len(piece)
    return f"'{''.join(out)}'"


def shown_plain(value: object, limit: int = 200) -> str:
    """A path, a flag's argument, a name, as a message quotes it: bare when it is short
    plain printable text, else as `shown` (a file name may hold a newline too)."""
    text = str(value)
    return text if len(text) <= limit and text.isprintable() else shown(text, limit)


def flat(text: str, limit: int = 1000) -> str:
    """`text` as one line of at most about `limit` characters: the last guard for messages
    built from text olmoctl did not write (a validator's message, a tool's stderr)."""
    if not text.isprintable():
        text = visible(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ paths the OS refuses
# What the OS says about a path itself (its name, its place, its kind, its permissions):
# the user's path to change, so exit 2. Anything else (I/O errors, a full disk) is exit 1.
_PATH_ERRNOS = frozenset(
    {
        errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP,
        errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.EXDEV, errno.ENXIO,
        errno.ENODEV, errno.EINVAL, errno.ENOTEMPTY,
    }
)  # fmt: skip


def os_refusal(e: OSError) -> OlmoctlError:
    """An OSError that reached the command line, as one line naming the path: the last
    guard for every path the OS refuses (too long, a loop, /proc, /sys, not a folder...),
    whichever code met it first."""
    where = shown_plain(e.filename) if e.filename is not None else "a file"
    if e.filename2 is not None:
        where += f" -> {shown_plain(e.filename2)}"
    what = e.strerror or type(e).__name__
    cls = UsageError if e.errno in _PATH_ERRNOS else OlmoctlError
    return cls(f"{where}: {what}")


def null_refusal(e: ValueError) -> OlmoctlError | None:
    """Python's refusal of a path with a NUL in it (before the OS sees it) as one line;
    None for any other ValueError (a bug: its traceback stays)."""
    if "embedded null" not in str(e):
        return None
    return UsageError("a path with a NUL character in it (\\x00): no file can have that name")


def user_path(text: str | os.PathLike[str], label: str = "path") -> Path:
    """TEXT as a path with a leading ~ or ~USER expanded; a ~USER that names no user is
    UsageError (one line) instead of pathlib's RuntimeError."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~nosuchuser, or no home directory at all
        head = str(text).split("/", 1)[0]
        raise UsageError(
            f"{label} {shown_plain(text)}: {shown_plain(head)} names no user with a home "
            "directory here; give the full path"
        ) from None
