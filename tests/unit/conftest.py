"""Fixtures shared by the unit tests of supervision (test_supervise, test_notify,
test_storage_class)."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoctl.core.launch import submit as launch
from olmoctl.core.supervise import watch as supervise
from olmoctl.store import Store
from tests.unit.test_store import FakeBackend


@pytest.fixture
def run(user_env, tmp_path: Path, monkeypatch) -> Store:
    """A store with one submitted run `r` (tiny on dev) on a fake scheduler, which
    supervise and status use."""
    store = Store()
    fake = FakeBackend()
    monkeypatch.setattr(supervise, "backend_for", lambda spec: fake)
    monkeypatch.setattr(supervise.status, "backend_for", lambda sched: fake)
    spec = launch.prepare(store, "tiny", "dev", nodes=1, name="r", time_limit=None,
                          overrides=[f"cluster.runs_root={tmp_path}"])  # fmt: skip
    launch.submit_attempt(store, spec, fake, new_run=True)
    return store
