"""Issue 26 item 1: nothing on the launcher side unpickles anything from a run directory,
which is anyone's who can write the project's filesystem. Every pickle-like name a run
directory may hold is planted with a pickle that creates a marker when loaded; `status`
(every form) and a `watch` tick on local runs, and `export` of a checkpoint whose DCP
metadata is such a pickle, must never create it. How a local job ended comes from the
job's own `exiting` event instead (checked here too)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from olmoctl.backends import procs
from olmoctl.backends.local import LocalBackend
from olmoctl.core.launch import submit as launch
from olmoctl.core.supervise import watch as supervise
from olmoctl.errors import OlmoctlError
from olmoctl.jobid import JobId
from olmoctl.store import Store


class _Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)  # runs as the user who unpickles it


def _plant(run_dir: Path, job_id: str, marker: Path) -> list[Path]:
    """The bomb under every name submitit gives a pickle of this job (every task), and a few
    other pickle-ish names, in RUN_DIR/submitit and RUN_DIR."""
    from submitit.core.utils import JobPaths

    bomb = pickle.dumps(_Bomb(marker))
    folder = run_dir / "submitit"
    names: set[Path] = set()
    for task in range(4):
        paths = JobPaths(folder, job_id=job_id, task_id=task)
        names |= {paths.result_pickle, paths.submitted_pickle}
        names |= {folder / f"{job_id}_{i}_{task}_result.pkl" for i in range(2)}  # arrays
    names |= {folder / n for n in ("result.pkl", "submitted.pkl", f"{job_id}.pkl")}
    names |= {run_dir / n for n in ("result.pkl", "outcome.pkl", "state.pt", "job.pkl")}
    for path in names:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bomb)
    return sorted(names)


class _Finished(LocalBackend):
    """Submits a process that exits at once, reaped, as the job (its identity recorded):
    the job has ended by the first `status`. identity=False records none (an older row)."""

    def __init__(self, identity: bool = True) -> None:
        self.identity = identity

    def check_reachable(self, spec: object) -> None:
        return None

    def submit(self, spec: object, script: str) -> tuple[str, str]:
        p = subprocess.Popen(["sleep", "0"])
        me = procs.identify(p.pid)
        assert me is not None
        p.wait()
        return JobId(str(p.pid), me.token if self.identity else None), script


def _launch(store: Store, name: str, root: Path, backend: LocalBackend) -> Path:
    spec = launch.prepare(store, "tiny", "local", nodes=1, name=name, time_limit=None,
                          overrides=[f"cluster.runs_root={root}"])  # fmt: skip
    launch.submit_attempt(store, spec, backend, new_run=True)
    return Path(spec.run_dir)


def _exiting(run_dir: Path, job_id: str, reason: str) -> None:
    """The job's own events: started (its job id) and exiting."""
    t = 10.0**9 * 3  # after any start time this machine can compute
    lines = [
        {"ts": t, "event": "started", "job_id": job_id, "attempt": 0},
        {"ts": t + 1, "event": "step", "step": 1, "loss": 5.0},
        {"ts": t + 2, "event": "exiting", "reason": reason, "exit_status": 0, "step": 1},
    ]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_status_and_watch_unpickle_nothing_from_a_run_dir(
    cli, user_env: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "PWNED"
    store = Store()
    runs = {
        "done": _Finished(),  # its events say completed
        "crashed": _Finished(),  # no events at all
        "old": _Finished(identity=False),  # an older row: no identity recorded
    }
    planted = []
    for name, backend in runs.items():
        run_dir = _launch(store, name, tmp_path / "runs", backend)
        job_id = str(store.last_attempt(name).job_id)
        planted += _plant(run_dir, job_id, marker)
        if name == "done":
            _exiting(run_dir, job_id, "completed")
    store.close()
    assert len(planted) > 20

    for args in (["status"], ["status", "--json"], ["status", "done"], ["status", "old"]):
        res = cli(*args)
        assert res.code == 0, res.err
        assert not marker.exists(), f"`olmoctl {' '.join(args)}` ran a pickle"
    store = Store()
    supervise.tick(store, "me", supervise.WatchPolicy(backoff_s=0))
    assert not marker.exists(), "watch ran a pickle"
    states = {n: store.attempts(n)[0].state for n in runs}  # "crashed" is resumed: killed
    assert states == {"done": "COMPLETED", "crashed": "FAILED", "old": "FAILED"}


def test_a_pickle_is_never_a_local_jobs_outcome(tmp_path: Path) -> None:
    """A result pickle saying "success" is not evidence; the job's `exiting` event is, and
    only the one after this job's own `started` event."""
    backend = _Finished()
    job = backend.submit(None, "")[0]
    run_dir = tmp_path / "run"
    (run_dir / "submitit").mkdir(parents=True)
    ok = pickle.dumps(("success", {"exit_status": 0}))
    (run_dir / "submitit" / f"{job}_0_result.pkl").write_bytes(ok)
    assert backend.query({job: str(run_dir)}).jobs[job].state == "FAILED"
    _exiting(run_dir, "1" + job, "completed")  # another job's (pid) events
    assert backend.query({job: str(run_dir)}).jobs[job].state == "FAILED"
    _exiting(run_dir, job, "error")
    assert backend.query({job: str(run_dir)}).jobs[job].state == "FAILED"
    _exiting(run_dir, job, "completed")
    assert backend.query({job: str(run_dir)}).jobs[job].state == "COMPLETED"


def test_export_builds_nothing_but_dcp_metadata(tmp_path: Path) -> None:
    """`olmoctl export` reads a checkpoint in a run directory: its DCP `.metadata` (a pickle)
    goes through an allowlist; a planted one is refused in one line and runs nothing."""
    import torch.distributed.checkpoint as dcp

    from olmoctl.core.launch import catalog
    from olmoctl.train.model import export_hf
    from olmoctl.train.model.olmo import OLMo

    cfg = catalog.load_recipe("tiny").model
    ckpt = tmp_path / "ckpt"
    dcp.save({"model": OLMo(cfg).state_dict()}, checkpoint_id=str(ckpt), no_dist=True)
    assert len(export_hf.load_model_state(ckpt)) > 0  # the real metadata passes

    marker = tmp_path / "PWNED"
    (ckpt / ".metadata").write_bytes(pickle.dumps(_Bomb(marker)))
    with pytest.raises(OlmoctlError) as refused:
        export_hf.load_model_state(ckpt)
    assert not marker.exists(), "export ran a pickle"
    assert "posix.mkdir is not part of DCP's metadata" in str(refused.value)
    os.unlink(ckpt / ".metadata")
    os.mkfifo(ckpt / ".metadata")  # would block an open() for reading forever
    with pytest.raises(OlmoctlError, match="is not a regular file"):
        export_hf.load_model_state(ckpt)
