"""Fixtures shared by the training-job tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.helpers import RESUME_RECIPE, launch, logs, tiny, wait_all, write_spec


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 ranks (srun's environment), 20 steps, checkpoints at 10 and 20, uninterrupted: the
    run that resumes (test_train_e2e) and in-loop evaluation (test_eval_e2e) must match."""
    base = tmp_path_factory.mktemp("reference")
    run_dir = base / "ref"
    spec = write_spec(run_dir, tiny(**RESUME_RECIPE))
    assert wait_all(launch(spec, 2, log_dir=base / "logs")) == [0, 0], logs(base / "logs")
    return run_dir
