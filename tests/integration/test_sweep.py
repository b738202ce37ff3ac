"""olmoctl sweep against the real local Slurm cluster: a job array, separate jobs with at most
P in flight (checked from sacct's Start/End records), and a sweep rejected before submitting."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pytest

from tests.integration.conftest import (
    HANG_GUARD_S,
    TERMINAL,
    VENV_BIN,
    DevCluster,
    Olmoctl,
    wait_for,
)

pytestmark = pytest.mark.slurm


def _sacct_intervals(cluster: DevCluster, job_ids: list[str]) -> list[tuple[float, float]]:
    """(start, end) of each job's allocation, once accounting has every one of them ended."""

    def read():
        p = cluster.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,State,Start,End", "-j", ",".join(job_ids)]
        )
        rows = {}
        for line in p.stdout.splitlines():
            job, state, start, end = line.split("|")
            if job in job_ids and state.split()[0] in TERMINAL and end != "Unknown":
                rows[job] = (
                    datetime.fromisoformat(start).timestamp(),
                    datetime.fromisoformat(end).timestamp(),
                )
        return list(rows.values()) if len(rows) == len(job_ids) else None

    return wait_for(read, HANG_GUARD_S, f"sacct to show jobs {job_ids} ended")


def _max_running(intervals: list[tuple[float, float]]) -> int:
    # At equal timestamps an end comes before a start (Slurm records whole seconds).
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _wait_sweep_ended(olmoctl: Olmoctl, name: str, timeout: float = HANG_GUARD_S) -> list[dict]:
    return wait_for(
        lambda: (
            (rows := olmoctl.json("status", "--sweep", name))
            and all(r["state"] in TERMINAL for r in rows)
            and rows
        ),
        timeout,
        f"sweep {name} to end",
        interval=1.0,
    )


def test_grid_of_four_as_a_job_array_completes_best_first(
    olmoctl: Olmoctl, dev_cluster: DevCluster
) -> None:
    res = olmoctl(
        "sweep", "tiny", "-c", "dev", "--name", "g4",
        "--grid", "optim.lr=1e-3,3e-3", "--grid", "model.n_layers=1,2",
        "--max-parallel", "2", "-o", olmoctl.root, "-o", "train.max_steps=20", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["mode"] == "array" and len(out["arrays"]) == 1
    dev_cluster.submitted.append(int(out["arrays"][0]))
    assert [p["job_id"] for p in out["points"]] == [f"{out['arrays'][0]}_{i}" for i in range(4)]
    # Submission returned at once: the points have not all run yet.
    first = olmoctl.json("status", "--sweep", "g4")
    assert any(r["state"] != "COMPLETED" for r in first)

    rows = _wait_sweep_ended(olmoctl, "g4")
    assert len(rows) == 4 and {r["state"] for r in rows} == {"COMPLETED"}, rows
    assert all(r["step"] == r["total_steps"] == 20 for r in rows)
    finals = [r["loss"] for r in rows]
    assert len(set(finals)) == 4, finals
    best = [r["best_loss"] for r in rows]
    assert best == sorted(best) and rows[0]["best_loss"] == min(best)
    assert {tuple(sorted(r["params"].items())) for r in rows} == {
        (("model.n_layers", n), ("optim.lr", lr)) for lr in ("1e-3", "3e-3") for n in ("1", "2")
    }
    # Slurm's %2 kept at most two points running.
    assert _max_running(_sacct_intervals(dev_cluster, [r["job_id"] for r in rows])) <= 2
    # Each point is an ordinary run: its logs are found under the array task id.
    logs = olmoctl("logs", "g4-0")
    assert logs.returncode == 0 and "step 20" in logs.stdout, logs.stderr
    table = olmoctl("status", "--sweep", "g4")
    assert table.returncode == 0 and table.stdout.index(rows[0]["name"]) < table.stdout.index(
        rows[-1]["name"]
    )


def test_six_points_at_most_two_in_flight_with_continue(
    olmoctl: Olmoctl, dev_cluster: DevCluster
) -> None:
    res = olmoctl(
        "sweep", "tiny", "-c", "dev", "--name", "p6", "--no-array", "-P", "2",
        "--grid", "optim.lr=1e-3,2e-3,3e-3,4e-3,5e-3,6e-3",
        "-o", olmoctl.root, "-o", "train.max_steps=20", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["mode"] == "jobs"
    assert [p["job_id"] is not None for p in out["points"]] == [True] * 2 + [False] * 4
    submitted = [p["job_id"] for p in out["points"] if p["job_id"]]
    dev_cluster.submitted.extend(int(j) for j in submitted)

    def advance():
        prog = olmoctl.json("sweep", "--continue", "p6")
        assert prog["in_flight"] <= 2, prog
        for s in prog["submitted"]:
            submitted.append(s["job_id"])
            dev_cluster.submitted.append(int(s["job_id"]))
        return prog["done"]

    wait_for(advance, HANG_GUARD_S, "sweep p6 to finish through --continue", interval=1.0)
    rows = olmoctl.json("status", "--sweep", "p6")
    assert len(rows) == 6 and {r["state"] for r in rows} == {"COMPLETED"}, rows
    assert sorted(r["job_id"] for r in rows) == sorted(submitted)
    assert _max_running(_sacct_intervals(dev_cluster, submitted)) == 2


def test_a_sweep_with_an_invalid_point_submits_nothing(
    olmoctl: Olmoctl, dev_cluster: DevCluster
) -> None:
    res = olmoctl(
        "sweep", "tiny", "-c", "dev", "--name", "bad",
        "--grid", "optim.lr=1e-3,3e-3,-1", "-o", olmoctl.root,
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.startswith("olmoctl: error: sweep point 2 (optim.lr=-1) is invalid: optim.lr")
    assert olmoctl.json("status") == []
    assert not olmoctl.runs.exists()
    queued = dev_cluster.run(["squeue", "-h", "-n", "bad,bad-0,bad-1", "-o", "%i"], check=True)
    assert queued.stdout.strip() == ""


def test_watch_submits_waiting_points(olmoctl: Olmoctl, dev_cluster: DevCluster) -> None:
    res = olmoctl(
        "sweep", "tiny", "-c", "dev", "--name", "w3", "--no-array", "-P", "1",
        "--grid", "optim.lr=1e-3,2e-3,3e-3", "-o", olmoctl.root, "-o", "train.max_steps=10",
        "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    first = [p["job_id"] for p in json.loads(res.stdout)["points"] if p["job_id"]]
    assert len(first) == 1
    dev_cluster.submitted.append(int(first[0]))
    watch = subprocess.run(
        [VENV_BIN + "/olmoctl", "watch", "--interval", "1", "--until-done"],
        env=olmoctl.env, capture_output=True, text=True, timeout=HANG_GUARD_S,
    )  # fmt: skip
    assert watch.returncode == 0, watch.stdout + watch.stderr
    assert watch.stderr.count("sweep point submitted") == 2, watch.stderr
    rows = olmoctl.json("status", "--sweep", "w3")
    assert {r["state"] for r in rows} == {"COMPLETED"}
    jobs = [r["job_id"] for r in rows]
    dev_cluster.submitted.extend(int(j) for j in jobs)
    assert _max_running(_sacct_intervals(dev_cluster, jobs)) == 1
