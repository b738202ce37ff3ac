"""paths: olmoctl's own XDG lookup answers what platformdirs answers on Linux."""

from __future__ import annotations

import platformdirs
import pytest

from olmoctl import paths


@pytest.mark.parametrize(
    "env",
    [{}, {"XDG_STATE_HOME": "/x/state", "XDG_CONFIG_HOME": "/x/config"}, {"XDG_STATE_HOME": "rel"}],
)
def test_same_folders_as_platformdirs(monkeypatch: pytest.MonkeyPatch, env: dict) -> None:
    for var in ("OLMOCTL_STATE_DIR", "OLMOCTL_CONFIG_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert paths.state_dir() == platformdirs.user_state_path("olmoctl")
    assert paths.user_dir("clusters") == platformdirs.user_config_path("olmoctl") / "clusters"


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLMOCTL_STATE_DIR", "/s")
    monkeypatch.setenv("OLMOCTL_CONFIG_DIR", "/c")
    assert paths.state_dir() == paths.Path("/s")
    assert paths.user_dir("recipes") == paths.Path("/c/recipes")
    assert paths.state_dir("/e") == paths.Path("/e")
