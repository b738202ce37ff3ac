"""The one quoting function family for shell text olmoctl writes: batch scripts (the
template's filters), job-array scripts, and the commands in them. Each re-checks its value
with the one validator (olmoctl.schemas.shellsafe), so a value that skipped validation still
cannot become code: it is refused (RenderError) or rendered inert.

  quote(v)             one literal shell word (shlex.quote; bare when v is a safe word)
  quote_expandable(v)  a double-quoted word in which only $NAME / ${NAME} expand
  sbatch_word(v)       a bare word for #SBATCH lines and comments (not shell: nothing quotes
                       there, so the value must need no quoting)
  shell_name(v)        a variable name
"""

from __future__ import annotations

import shlex

from olmoctl.errors import OlmoctlError
from olmoctl.schemas import shellsafe


class RenderError(OlmoctlError):
    """A value that cannot be placed in a script (validation should have refused it)."""


def _checked(check: shellsafe.Check, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RenderError(f"cannot render {shellsafe.shown(value)} into a script")
    try:
        return check(str(value))
    except ValueError as e:
        raise RenderError(f"cannot render into a script: {e}") from None


def quote(value: object) -> str:
    return shlex.quote(_checked(shellsafe.check_text, value))


def quote_expandable(value: object) -> str:
    """`"..."` with $NAME/${NAME} references live and everything else literal: inside
    double quotes the result of an expansion is never parsed again, so no combination of
    values (`${D}${P}`) can make a command."""
    text = _checked(shellsafe.check_expandable, value)
    out = []
    for is_ref, part in shellsafe.split_refs(text):
        # Literal parts are escaped even though the validator refused these characters.
        out.append(part if is_ref else "".join("\\" + c if c in '$`"\\' else c for c in part))
    return '"' + "".join(out) + '"'


def sbatch_word(value: object) -> str:
    return _checked(shellsafe.check_word, value)


def shell_name(value: object) -> str:
    return _checked(shellsafe.check_env_name, value)
