"""Helpers for the training-job tests: recipes/specs on disk, ranks as subprocesses (with
srun's or torchrun's environment), events, and polling with deadlines."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
# Every deadline in tests/train is a hang guard, never a speed test: a correct program on a
# loaded 2-core machine can run many times slower than alone (the slowest test, tiny loss
# in one process, takes ~26 s alone and hit an old 120 s limit under load). Far above that.
HANG_GUARD_S = 900.0
PY = sys.executable

# 2 ranks x micro-batch 12 x 2 accumulation steps = the global batch of 48 (the `reference`
# run of tests/train/conftest.py, and every run compared with it).
RESUME_RECIPE = {
    "train.max_steps": 20,
    "train.micro_batch_size": 12,
    "checkpoint.interval_steps": 10,
    "checkpoint.keep_last": 5,
}


def tiny(**overrides: Any) -> dict[str, Any]:
    """The tiny recipe as a dict, with dotted overrides: tiny(**{"train.max_steps": 20})."""
    recipe = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    recipe["train"]["heartbeat_interval_s"] = 0.2
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = recipe
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return recipe


def write_spec(run_dir: Path, recipe: dict[str, Any], nodes: int = 1) -> Path:
    """RUN_DIR/spec.json the way the launcher writes it, on a local 8-node test cluster."""
    cluster = {
        "name": "testbox",
        "scheduler": "local",
        "vendor": "cpu",
        "tasks_per_node": 1,
        "max_nodes": 8,
        "distributed_backend": "gloo",
        "runs_root": str(run_dir.parent),
    }
    return save_spec(run_dir, recipe=recipe, cluster=cluster, nodes=nodes)


def save_spec(run_dir: Path, **fields: Any) -> Path:
    """RUN_DIR/spec.json the way the launcher writes it (RunSpec.model_dump_json): the run
    named after RUN_DIR, 10 minutes, the rest of the spec from `fields`."""
    from olmoctl.schemas.run import RunSpec

    spec = RunSpec.model_validate(
        {"name": run_dir.name, **fields, "time": "00:10:00", "run_dir": str(run_dir)}
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "spec.json"
    path.write_text(spec.model_dump_json(indent=2))
    return path


def free_port(lo: int = 20000, hi: int = 40000) -> int:
    """A port that is free now, in the range srun's derivation (20000 + job_id % 20000) gives."""
    rng = random.Random(os.getpid() ^ time.time_ns())
    for _ in range(200):
        port = rng.randrange(lo, hi)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _base_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "MASTER_", "OLMOCTL_", "TORCHELASTIC"))
        and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def launch(
    config: Path,
    nprocs: int = 1,
    *,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> list[subprocess.Popen[bytes]]:
    """`python -m olmoctl.train CONFIG` as nprocs ranks with srun's environment
    (SLURM_PROCID/NTASKS/LOCALID/JOB_NODELIST; the master port comes from the job id),
    or as one plain process when nprocs == 1."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    port = free_port()
    job_id = str(port - 20000 + 20000 * 7)  # port = 20000 + job_id % 20000
    for rank in range(nprocs):
        env = _base_env(extra_env)
        if nprocs > 1:
            env.update(
                SLURM_JOB_ID=job_id,
                SLURM_PROCID=str(rank),
                SLURM_LOCALID=str(rank),
                SLURM_NTASKS=str(nprocs),
                SLURM_NNODES="1",
                SLURM_JOB_NODELIST="localhost",
                OMP_NUM_THREADS="1",
            )
        out = open(log_dir / f"rank{rank}.log", "ab")  # noqa: SIM115 - the child owns it
        procs.append(
            subprocess.Popen(
                [PY, "-m", "olmoctl.train", str(config), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )
        )
        out.close()
    return procs


def torchrun(
    config: Path, nprocs: int, *, log_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    env = _base_env({"OMP_NUM_THREADS": "1", **(extra_env or {})})
    with open(log_dir / "torchrun.log", "ab") as out:
        return subprocess.Popen(
            [
                PY, "-m", "torch.distributed.run", "--nproc-per-node", str(nprocs),
                "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                "-m", "olmoctl.train", str(config),
            ],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
        )  # fmt: skip


def wait_all(procs: list[subprocess.Popen[bytes]], timeout: float = HANG_GUARD_S) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    try:
        for p in procs:
            codes.append(p.wait(timeout=max(0.1, deadline - time.monotonic())))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    return codes


def logs(log_dir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(log_dir.glob("*.log"))
    )


def events(run_dir: Path) -> list[dict[str, Any]]:
    """Every line must be a JSON object with ts and event."""
    out = []
    path = run_dir / "events.jsonl"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        record = json.loads(line)
        assert isinstance(record["ts"], float) and isinstance(record["event"], str), record
        out.append(record)
    return out


def losses(evs: list[dict[str, Any]], after_last_start: bool = False) -> dict[int, float]:
    if after_last_start:
        starts = [i for i, e in enumerate(evs) if e["event"] == "started"]
        evs = evs[starts[-1] :]
    return {e["step"]: e["loss"] for e in evs if e["event"] == "step"}


def poll(cond: Callable[[], Any], what: str, timeout: float = HANG_GUARD_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def first(evs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in evs if e["event"] == kind)


def copy_at_step_10(reference: Path, dest: Path, recipe: dict[str, Any]) -> Path:
    """A 20-step run directory (a checkpoint every 10 steps) as it was when stopped after
    step 10, at `dest`; its spec.json for `recipe`."""
    shutil.copytree(reference, dest)
    shutil.rmtree(dest / "checkpoints" / "step_00000020")
    (dest / "events.jsonl").unlink()
    return write_spec(dest, recipe)


def assert_bitwise(got: dict[int, float], ref: dict[int, float], from_step: int) -> None:
    """`got` has the losses of steps from_step..20, each the reference's to the bit."""
    assert sorted(got) == list(range(from_step, 21))
    assert all(got[s] == ref[s] for s in got), [(s, got[s], ref[s]) for s in got]
