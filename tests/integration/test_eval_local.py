"""In-loop evaluation and the metrics sinks through the real CLI and a real job
(`--cluster local`: submitit's LocalExecutor, no Slurm): launch with `-o eval...` and
`-o metrics...`, then `status RUN` (text and --json) and `card RUN` show the eval loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import HANG_GUARD_S
from tests.train.sink_files import tb_scalars, wandb_history

VENV_BIN = str(Path(sys.executable).parent)


def _olmoctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VENV_BIN + "/olmoctl", *args], env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)  # fmt: skip


def test_launch_with_eval_and_sinks_then_status_and_card(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    pytest.importorskip("wandb", reason="wandb is not installed")
    env = dict(os.environ, OLMOCTL_STATE_DIR=str(tmp_path / "state"),
               PATH=f"{VENV_BIN}:/usr/bin:/bin")  # fmt: skip
    try:
        res = _olmoctl(env, "launch", "tiny", "-c", "local", "--wait", "--name", "ev1",
                       "-o", f"cluster.runs_root={tmp_path / 'runs'}",
                       "-o", "train.max_steps=20", "-o", "eval.interval_steps=10",
                       "-o", "eval.held_out_fraction=0.05", "-o", "eval.batches=2",
                       "-o", "metrics.tensorboard=true",
                       "-o", "metrics.wandb.project=olmoctl-tests")  # fmt: skip
        assert res.returncode == 0, res.stderr + _olmoctl(env, "logs", "ev1").stdout[-3000:]
    finally:
        _olmoctl(env, "cancel", "ev1")

    res = _olmoctl(env, "status", "ev1", "--json")
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["state"] == "COMPLETED" and d["eval_step"] == 20
    assert set(d["eval_loss"]) == {"held_out"} and 0 < d["eval_loss"]["held_out"] < 5.6
    res = _olmoctl(env, "status", "ev1")
    assert res.returncode == 0 and "eval at step 20: held_out " in res.stdout, res.stdout

    run_dir = Path(d["run_dir"])
    res = _olmoctl(env, "card", "ev1")
    assert res.returncode == 0, res.stderr
    card = json.loads((run_dir / "card" / "ev1.json").read_text())
    assert [s for s, _ in card["eval_losses"]["held_out"]] == [10, 20]
    assert "training and eval loss" in (run_dir / "card" / "ev1.md").read_text()

    tb = tb_scalars(run_dir / "tensorboard")
    assert [s for s, _ in tb["eval/held_out/loss"]] == [10, 20]
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    hist = wandb_history(offline)
    assert hist[20]["eval/held_out/loss"] == d["eval_loss"]["held_out"]
    assert sorted(hist) == list(range(1, 21))
