"""Where olmoctl finds its shipped data, the user's own profiles/recipes, and its state."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_path, user_state_path

_PKG = Path(__file__).resolve().parent
# The state store's file in the state dir (olmoctl.store opens it).
DB_NAME = "olmoctl.sqlite3"


def data_dir(kind: str) -> Path:
    """A shipped data folder: `templates`, `clusters` or `recipes`.

    An installed wheel carries them under olmoctl/_data; a source checkout (editable
    install) has them at the repository's top level, where users see them.
    """
    installed = _PKG / "_data" / kind
    if installed.is_dir():
        return installed
    return _PKG.parent / kind


def user_dir(kind: str) -> Path:
    """The user's own `clusters` or `recipes` (~/.config/olmoctl/KIND on Linux)."""
    override = os.environ.get("OLMOCTL_CONFIG_DIR")
    base = Path(override) if override else user_config_path("olmoctl")
    return base / kind


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("OLMOCTL_STATE_DIR")
    return Path(env) if env else user_state_path("olmoctl")
