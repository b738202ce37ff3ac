"""The one validator for strings that reach a batch script, a job-array script, a Slurm
argument list or the local job's environment, whatever field, file, environment variable or
store row they came from. `olmoctl.core.launch.render` holds the one quoting function that puts
them there; together they make sure no value can run a command.

Kinds of value (each a check_* function, and an Annotated type for the schemas):
  name      letters, digits and _.+- (1-64, a letter or digit first): run, recipe, cluster,
            account, partition, qos. Unquoted in #SBATCH lines and the header comment.
  word      one shell word needing no quotes (shlex's safe characters): srun/sbatch
            arguments, modules, the python command, the rendered paths.
  host      a Slurm node (host) name: --exclude, ExcNodeList, node health.
  expandable  free text that may refer to job-time variables as $NAME or ${NAME}, and
            nothing else ($(...), `...`, ${X@P}, $[..], $((..)), ${!X}, "$$"... are refused):
            env values, container image/binds/args, the run and data roots.
  text      any printable text (no control characters: no newline, NUL, escape...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

from olmoctl.errors import shown, shown_plain  # the one way a message quotes a value

MAX_TEXT = 4096  # longer than any real path or value; keeps errors and scripts sane
SHOW = 100  # an error quotes at most this many characters of a value

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# shlex.quote leaves a word of exactly these characters bare, so a quoted word renders the
# same in every branch of the template.
WORD_RE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
JOB_ID_RE = re.compile(r"[0-9]+(?:[_+][0-9]+)?")  # 123, an array task 123_4, het 123+0
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A POSIX-ish login name, as {user} in paths (from ssh.user, $LOGNAME, $USER...).
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
# The only expansions allowed in an expandable value: $NAME and ${NAME}.
VAR_REF = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")
# Outside the allowed references these cannot appear in an expandable value: each would
# either end the double quotes or start a command or expansion there.
_EXPAND_BAD = re.compile(r'[$`"\\]')
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _subj(what: str, value: str) -> str:
    return f"{what} {shown(value)}" if what else shown(value)


def inline(value: str) -> str:
    """`value` for a one-line message: as is when short and printable, else shown()."""
    return shown_plain(value, SHOW)


def _bounded(value: str, what: str) -> None:
    if len(value) > MAX_TEXT:  # every string bounded (issue 14 item 13)
        raise ValueError(f"{what or 'value'} is {len(value)} characters long; at most {MAX_TEXT}")


def _matching(pattern: re.Pattern[str], value: str, what: str, problem: str) -> str:
    """`value` when all of it matches `pattern`; else ValueError: WHAT 'VALUE' PROBLEM."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{_subj(what, value)} {problem}")
    return value


def check_text(value: str, what: str = "") -> str:
    _bounded(value, what)
    m = _CONTROL.search(value)
    if m:
        raise ValueError(
            f"{_subj(what, value)} is not allowed here: it holds a control character "
            f"({m.group()!r}); values land in the batch script"
        )
    return value


def check_name(value: str, what: str = "") -> str:
    return _matching(
        NAME_RE, value, what,
        "is not allowed here: a name is 1-64 letters, digits and _.+-, starting with a letter "
        "or digit (it lands in the batch script)",
    )  # fmt: skip


def check_word(value: str, what: str = "") -> str:
    _matching(
        WORD_RE, value, what,
        "is not allowed here: use one word of letters, digits and _@%+=:,./- (no spaces, "
        "quotes or shell characters: it lands in the batch script)",
    )  # fmt: skip
    _bounded(value, what)  # bounded like Text
    return value


def check_host(value: str, what: str = "") -> str:
    return _matching(
        HOST_RE, value, what,
        "is not allowed here: a Slurm host name is letters, digits and _.- (at most 63, a "
        "letter or digit first)",
    )  # fmt: skip


def check_job_id(value: str, what: str = "") -> str:
    return _matching(JOB_ID_RE, value, what, "is not a Slurm job id (digits, or JOB_TASK)")


def is_host(value: str) -> bool:
    return bool(HOST_RE.fullmatch(value))


def check_env_name(value: str, what: str = "") -> str:
    return _matching(ENV_NAME_RE, value, what, "is not a valid environment variable name")


def check_user(value: str, what: str = "") -> str:
    return _matching(
        USER_RE, value, what, "is not a valid user name: letters, digits and _.- (at most 32)"
    )


def check_expandable(value: str, what: str = "") -> str:
    check_text(value, what)
    rest = VAR_REF.sub("", value)
    m = _EXPAND_BAD.search(rest)
    if m:
        raise ValueError(
            f"{_subj(what, value)} is not allowed here: {m.group()!r} outside a $NAME or "
            "${NAME} reference (only those two forms may expand; no $(...), backticks, "
            "${X@P}, $((...)), quotes or backslashes)"
        )
    return value


def split_refs(value: str) -> list[tuple[bool, str]]:
    """`value` as (is_reference, text) parts: the allowed $NAME/${NAME} references and the
    literal text between them (for the quoting function)."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in VAR_REF.finditer(value):
        if m.start() > pos:
            parts.append((False, value[pos : m.start()]))
        parts.append((True, m.group()))
        pos = m.end()
    if pos < len(value):
        parts.append((False, value[pos:]))
    return parts


def _each(check: Callable[[str], str]) -> AfterValidator:
    return AfterValidator(check)


# For the schemas: the kind of each shell-bound string field.
Name = Annotated[str, _each(check_name)]
Word = Annotated[str, _each(check_word)]
Host = Annotated[str, _each(check_host)]
Expandable = Annotated[str, _each(check_expandable)]
Text = Annotated[str, _each(check_text)]

Check = Callable[[str], str]
