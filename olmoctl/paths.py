"""Where olmoctl finds its shipped data, the user's own profiles/recipes, and its state."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
    if override:
        return Path(override) / kind
    return _xdg("XDG_CONFIG_HOME", ".config", "user_config_path") / kind


CATALOG_SUFFIXES = (".yaml", ".yml")


def catalog_files(kind: str) -> dict[str, tuple[Path, str]]:
    """Name -> (file, "shipped" | "user") of every `clusters` or `recipes` YAML file, the
    user's own shadowing shipped ones. Reads folder listings only (no YAML, no pydantic):
    the catalog (core/launch/catalog.py) and shell completion share it."""
    found: dict[str, tuple[Path, str]] = {}
    for source, folder in (("shipped", data_dir(kind)), ("user", user_dir(kind))):
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.suffix in CATALOG_SUFFIXES and p.is_file():
                found[p.stem] = (p, source)
    return found


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("OLMOCTL_STATE_DIR")
    if env:
        return Path(env)
    return _xdg("XDG_STATE_HOME", ".local/state", "user_state_path")


def _xdg(var: str, default: str, platformdirs_fn: str) -> Path:
    """The XDG folder for olmoctl on Linux (what platformdirs answers there, without its
    import cost on every command); platformdirs elsewhere (macOS, Windows)."""
    if sys.platform.startswith("linux"):
        base = os.environ.get(var, "").strip()
        root = Path(base) if base and os.path.isabs(base) else Path.home() / default
        return root / "olmoctl"
    import platformdirs

    return Path(getattr(platformdirs, platformdirs_fn)("olmoctl"))
