"""Errors that reach the user as one line and exit code 2 (bad input) or 1 (failure)."""

from __future__ import annotations


class OlmoctlError(Exception):
    """An expected failure: printed as one line, no traceback."""

    exit_code = 1


class UsageError(OlmoctlError):
    """Bad input from the user (a file, a key, a value): exit code 2."""

    exit_code = 2
