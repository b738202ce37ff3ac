"""What `launch` and `sweep` print on stderr beside their result: each check --force
overrode, and the free-space warning (core/launch/checks.py)."""

from __future__ import annotations

from typing import Any


def warning(text: str) -> None:
    from olmoctl.cli.text import echo

    echo(f"warning: {text}", err=True)  # paths, names, free space: data


def warn_forced(spec: Any, force: bool, prefix: str = "") -> None:
    """With --force, each check that would have refused the run, as a warning."""
    if force:
        from olmoctl.core.launch.checks import problems

        for p in problems(spec):
            warning(f"{prefix}launching anyway (--force): {p}")


def warn_space(specs: list[Any], *, remote_ok: bool) -> None:
    """The free-space warning for runs about to be submitted (a remote cluster's login node
    is asked only when `remote_ok`: a dry run opens no connection for it)."""
    from olmoctl.backends.registry import backend_for
    from olmoctl.core.launch.checks import space_warning

    files = backend_for(specs[0]).files
    if files.remote and not remote_ok:
        return
    if (text := space_warning(specs, files)) is not None:
        warning(text)
