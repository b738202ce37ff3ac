"""Sweeps without a scheduler: expansion, random draws, validation, files, submission logic
(fake backends; the real Slurm runs in tests/integration/test_sweep.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.backends.slurm import SlurmBackend
from olmoctl.core import sweep
from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.store import Store


def _def(tmp_path: Path, **kw) -> sweep.Definition:
    overrides = [f"cluster.runs_root={tmp_path / 'runs'}", *kw.pop("overrides", [])]
    return sweep.definition(recipe="tiny", cluster="dev", overrides=overrides, **kw)


class FakeBackend(SlurmBackend):
    """Slurm's file layout and job arrays, no Slurm calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.submitted: list[str] = []
        self.cancelled: list[str] = []
        self.fail_after = fail_after
        self.next_id = 100

    def check_reachable(self, spec) -> None:
        return None

    def submit(self, spec, script):
        if self.fail_after is not None and len(self.submitted) >= self.fail_after:
            raise OlmoctlError("sbatch failed: boom")
        self.next_id += 1
        self.submitted.append(spec.name)
        return str(self.next_id), script

    def query(self, job_ids):
        return QueryResult({j: JobInfo(j, "RUNNING") for j in job_ids}, "sacct")

    def queued(self, job_ids):
        return {j: JobInfo(j, "RUNNING") for j in job_ids}  # the controller agrees

    def cancel(self, job_id, run_dir) -> None:
        self.cancelled.append(job_id)


class FakeArrays(FakeBackend):
    def __init__(self, fail_on: int | None = None) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.released: list[str] = []
        self.cancelled: list[str] = []
        self.jobs: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def submit_array(self, script_path: str) -> str:
        if self.fail_on is not None and len(self.scripts) == self.fail_on:
            raise OlmoctlError("sbatch failed: array boom")
        self.scripts.append(Path(script_path).read_text())
        return str(500 + len(self.scripts))

    def release_array(self, array_id: str) -> None:
        self.released.append(array_id)

    def cancel_array(self, array_id: str) -> None:
        self.cancelled.append(array_id)

    def submit_array_task(self, spec, script, array_id: str, index: int):
        job_id = f"{array_id}_{index}"
        self.jobs.append((spec.name, job_id))
        return job_id, script


def _set_states(store: Store, states: dict[str, str]):
    """A stand-in for status.refresh: the scheduler says these runs are in these states."""

    def refresh(store_, run_names=None):
        with store.tx() as tx:
            for name, state in states.items():
                last = tx.last_attempt(name)
                if last is not None:
                    tx.update_attempt(last.id, state=state)
                    tx.set_run_state(name, state)

    return refresh


# -- expansion ------------------------------------------------------------------------------
def test_grid_is_the_cartesian_product_last_key_fastest(user_env, tmp_path) -> None:
    d = _def(tmp_path, grid=["optim.lr=1e-4,3e-4,1e-3", "model.n_layers=1,2"])
    points = sweep.expand(d)
    assert len(points) == 6
    assert points[0] == {"optim.lr": "1e-4", "model.n_layers": "1"}
    assert points[1] == {"optim.lr": "1e-4", "model.n_layers": "2"}
    assert points[-1] == {"optim.lr": "1e-3", "model.n_layers": "2"}


def test_grid_values_keep_bracketed_lists_whole() -> None:
    assert sweep.split_values("[0.9,0.95],[0.9,0.99]") == ["[0.9,0.95]", "[0.9,0.99]"]
    with pytest.raises(UsageError, match="empty value"):
        sweep.parse_grid(["optim.lr=1e-4,,3e-4"])
    with pytest.raises(UsageError, match="given twice"):
        sweep.parse_grid(["optim.lr=1", "optim.lr=2"])


def test_random_search_is_reproducible_with_the_same_seed(user_env, tmp_path) -> None:
    samples = [
        "optim.lr=loguniform:1e-5:1e-3",
        "optim.weight_decay=uniform:0:0.2",
        "schedule.warmup_steps=int:1:9",
        "train.micro_batch_size=choice:1,2",
    ]
    a = sweep.expand(_def(tmp_path, random_count=16, seed=7, samples=samples))
    b = sweep.expand(_def(tmp_path, random_count=16, seed=7, samples=samples))
    c = sweep.expand(_def(tmp_path, random_count=16, seed=8, samples=samples))
    assert a == b and a != c and len(a) == 16
    for p in a:
        assert 1e-5 <= float(p["optim.lr"]) <= 1e-3
        assert 0 <= float(p["optim.weight_decay"]) <= 0.2
        assert 1 <= int(p["schedule.warmup_steps"]) <= 9
        assert p["train.micro_batch_size"] in ("1", "2")
    assert len({p["optim.lr"] for p in a}) == 16


def test_random_crossed_with_grid(user_env, tmp_path) -> None:
    d = _def(
        tmp_path,
        grid=["model.n_layers=1,2"],
        random_count=3,
        samples=["optim.lr=uniform:0.001:0.01"],
    )
    points = sweep.expand(d)
    assert len(points) == 6
    assert points[0]["optim.lr"] == points[1]["optim.lr"]
    assert [p["model.n_layers"] for p in points[:2]] == ["1", "2"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("optim.lr=normal:0:1", "unknown distribution 'normal'"),
        ("optim.lr=loguniform:0:1", "LOW > 0"),
        ("optim.lr=uniform:2:1", "LOW must be below HIGH"),
        ("optim.lr=uniform:a:1", "expected uniform:LOW:HIGH"),
        ("schedule.warmup_steps=int:1.5:3", "with integers"),
        ("optim.lr=choice:", "choice needs values"),
        ("optim.lr", "expected key.path="),
    ],
)
def test_bad_samples_are_usage_errors(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sweep.parse_samples([item])


def test_definition_needs_something_consistent(user_env, tmp_path) -> None:
    with pytest.raises(UsageError, match="nothing to sweep"):
        _def(tmp_path)
    with pytest.raises(UsageError, match="--sample needs --random"):
        _def(tmp_path, samples=["optim.lr=uniform:0.1:0.2"])
    with pytest.raises(UsageError, match="--random needs"):
        _def(tmp_path, random_count=3)
    with pytest.raises(UsageError, match="both a grid key and a sampled key"):
        _def(tmp_path, grid=["optim.lr=1,2"], random_count=2, samples=["optim.lr=uniform:1:2"])


# -- validation -----------------------------------------------------------------------------
def test_one_bad_point_rejects_the_sweep_naming_point_and_key(user_env, tmp_path) -> None:
    store = Store()
    d = _def(tmp_path, grid=["optim.lr=1e-3,-1,3e-3"])
    with pytest.raises(UsageError) as e:
        sweep.plan(store, d)
    assert str(e.value).startswith("sweep point 1 (optim.lr=-1) is invalid: optim.lr:")
    assert store.run_names() == []
    d = _def(tmp_path, grid=["model.n_heads=2,3"])
    with pytest.raises(UsageError, match=r"sweep point 1 \(model.n_heads=3\).*n_heads"):
        sweep.plan(store, d)
    d = _def(tmp_path, grid=["optim.lrr=1,2"])
    with pytest.raises(UsageError, match=r"sweep point 0 \(optim.lrr=1\).*did you mean 'optim.lr'"):
        sweep.plan(store, d)


def test_invalid_point_through_the_cli_exits_2_and_submits_nothing(cli, tmp_path) -> None:
    root = f"cluster.runs_root={tmp_path / 'runs'}"
    res = cli("sweep", "tiny", "-c", "dev", "--grid", "optim.lr=1e-3,-1", "-o", root)
    assert res.code == 2
    assert res.err.startswith("olmoctl: error: sweep point 1 (optim.lr=-1)")
    assert len(res.err.strip().splitlines()) == 1
    assert Store().run_names() == []
    assert not (tmp_path / "runs").exists()


# -- the sweep file -------------------------------------------------------------------------
def test_sweep_file_gives_the_same_points_as_the_flags(user_env, tmp_path) -> None:
    f = tmp_path / "sweep.yaml"
    f.write_text(
        "recipe: tiny\ncluster: dev\nmax_parallel: 2\n"
        f"overrides:\n  cluster.runs_root: {tmp_path / 'runs'}\n  train.max_steps: 20\n"
        "grid:\n  optim.lr: [1e-3, 3.0e-3]\n  optim.betas: [[0.9, 0.95], [0.9, 0.99]]\n"
        "random: 2\nseed: 3\nsample:\n  optim.weight_decay: uniform:0:0.1\n"
    )
    from_file = sweep.definition(recipe=None, cluster=None, file=str(f))
    from_flags = _def(
        tmp_path,
        overrides=["train.max_steps=20"],
        max_parallel=2,
        grid=["optim.lr=1e-3,0.003", "optim.betas=[0.9, 0.95],[0.9, 0.99]"],
        random_count=2,
        seed=3,
        samples=["optim.weight_decay=uniform:0:0.1"],
    )
    assert sweep.expand(from_file) == sweep.expand(from_flags)
    assert from_file.max_parallel == 2
    specs = sweep.plan(Store(), from_file).points
    assert list(specs[0].spec.recipe.optim.betas) == [0.9, 0.95]
    assert list(specs[1].spec.recipe.optim.betas) == [0.9, 0.99]
    # Flags override the file.
    assert sweep.definition(recipe=None, cluster=None, file=str(f), seed=4).seed == 4


def test_bad_sweep_file_is_one_line(user_env, tmp_path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("recipe: tiny\ncluster: dev\ngird:\n  optim.lr: [1]\n")
    with pytest.raises(UsageError, match="unknown key 'gird'"):
        sweep.definition(recipe=None, cluster=None, file=str(f))
    with pytest.raises(UsageError, match="does not exist"):
        sweep.definition(recipe=None, cluster=None, file=str(tmp_path / "nope.yaml"))


# -- submission -----------------------------------------------------------------------------
def test_single_node_points_go_as_held_arrays_within_max_array_size(user_env, tmp_path) -> None:
    store = Store()
    d = _def(
        tmp_path,
        grid=["optim.lr=1e-3,2e-3,3e-3,4e-3,5e-3"],
        max_parallel=2,
        overrides=["cluster.max_array_size=2"],
    )
    plan = sweep.plan(store, d)
    assert plan.mode == "array" and plan.name == "tiny-sweep"
    arrays = FakeArrays()
    done = sweep.create(store, plan, backend=arrays)
    assert done.arrays == ["501", "502", "503"] and arrays.released == done.arrays
    assert [p["job_id"] for p in done.points] == ["501_0", "501_1", "502_0", "502_1", "503_0"]
    assert "#SBATCH --array=0-1%2" not in arrays.scripts[0]  # 2 points, 2 at once: no %
    assert "#SBATCH --array=0-1\n" in arrays.scripts[0]
    assert "--dependency" not in arrays.scripts[0]
    assert "#SBATCH --dependency=afterany:501" in arrays.scripts[1]
    assert "#SBATCH --array=0-0\n" in arrays.scripts[2]
    assert arrays.jobs[0] == ("tiny-sweep-0", "501_0")
    for p in done.points:
        run = store.get_run(p["name"])
        assert run.state == "PENDING" and run.sweep == "tiny-sweep"
        script = Path(run.run_dir, "scripts", "attempt-1.sh").read_text()
        assert store.last_attempt(p["name"]).script == script
    # The array runs each point's own script.
    assert f"run_dir={tmp_path / 'runs' / 'tiny-sweep-1'}; attempt=1" in arrays.scripts[0]


def test_array_parallelism_goes_into_the_array_line(user_env, tmp_path) -> None:
    plan = sweep.plan(Store(), _def(tmp_path, grid=["optim.lr=1e-3,2e-3,3e-3"], max_parallel=2))
    text = sweep.dry_run(plan)[-1]["script"]
    assert "#SBATCH --array=0-2%2" in text and "#SBATCH --job-name=tiny-sweep" in text


def test_a_failed_array_submission_leaves_nothing(user_env, tmp_path) -> None:
    store = Store()
    d = _def(tmp_path, grid=["optim.lr=1e-3,2e-3,3e-3"], overrides=["cluster.max_array_size=2"])
    arrays = FakeArrays(fail_on=1)
    with pytest.raises(OlmoctlError, match="array boom"):
        sweep.create(store, sweep.plan(store, d), backend=arrays)
    assert arrays.cancelled == ["501"]
    assert store.run_names() == []
    assert store.connect().execute("SELECT COUNT(*) FROM sweeps").fetchone()[0] == 0
    assert not any((tmp_path / "runs").glob("tiny-sweep-*"))


def test_separate_jobs_keep_at_most_p_in_flight(user_env, tmp_path) -> None:
    store = Store()
    d = _def(tmp_path, grid=["optim.lr=1e-3,2e-3,3e-3,4e-3,5e-3"], max_parallel=2, array=False)
    plan = sweep.plan(store, d)
    assert plan.mode == "jobs" and "--continue tiny-sweep" in plan.note
    backend = FakeBackend()
    done = sweep.create(store, plan, backend=backend)
    assert backend.submitted == ["tiny-sweep-0", "tiny-sweep-1"]
    assert [p["job_id"] is not None for p in done.points] == [True, True, False, False, False]
    assert store.get_run("tiny-sweep-4").state == sweep.WAITING

    # Nothing ended: nothing more goes.
    prog = sweep.advance(store, "tiny-sweep", backend=backend, refresh=_set_states(store, {}))
    assert prog.submitted == [] and (prog.waiting, prog.in_flight, prog.ended) == (3, 2, 0)
    # One ended: exactly one more goes.
    refresh = _set_states(store, {"tiny-sweep-0": "COMPLETED"})
    prog = sweep.advance(store, "tiny-sweep", backend=backend, refresh=refresh)
    assert [n for n, _ in prog.submitted] == ["tiny-sweep-2"]
    assert (prog.waiting, prog.in_flight, prog.ended) == (2, 2, 1)
    done_all = {f"tiny-sweep-{i}": "COMPLETED" for i in range(5)}
    for _ in range(3):
        prog = sweep.advance(
            store, "tiny-sweep", backend=backend, refresh=_set_states(store, done_all)
        )
    assert prog.done and prog.ended == 5
    assert backend.submitted == [f"tiny-sweep-{i}" for i in range(5)]


def test_a_failed_later_submission_puts_the_point_back_in_line(user_env, tmp_path) -> None:
    store = Store()
    d = _def(tmp_path, grid=["optim.lr=1e-3,2e-3,3e-3"], max_parallel=1, array=False)
    backend = FakeBackend(fail_after=1)
    sweep.create(store, sweep.plan(store, d), backend=backend)
    refresh = _set_states(store, {"tiny-sweep-0": "FAILED"})
    with pytest.raises(OlmoctlError, match="boom"):
        sweep.advance(store, "tiny-sweep", backend=backend, refresh=refresh)
    assert store.get_run("tiny-sweep-1").state == sweep.WAITING
    assert store.attempts("tiny-sweep-1") == []


def test_multi_node_points_are_separate_jobs(user_env, tmp_path) -> None:
    plan = sweep.plan(Store(), _def(tmp_path, grid=["optim.lr=1e-3,2e-3"], nodes=2))
    assert plan.mode == "jobs"
    with pytest.raises(UsageError, match="several nodes"):
        sweep.plan(Store(), _def(tmp_path, grid=["optim.lr=1e-3,2e-3"], nodes=2, array=True))


def test_names_taken_are_refused_or_skipped(user_env, tmp_path) -> None:
    store = Store()
    d = _def(tmp_path, grid=["optim.lr=1e-3,2e-3"], array=False)
    sweep.create(store, sweep.plan(store, d), backend=FakeBackend())
    assert sweep.plan(store, d).name == "tiny-sweep2"
    d.name = "tiny-sweep"
    with pytest.raises(UsageError, match="already exists"):
        sweep.plan(store, d)


def test_cancel_stops_waiting_points_and_cancels_live_ones(user_env, tmp_path, monkeypatch) -> None:
    from olmoctl.core.track import control

    store = Store()
    d = _def(tmp_path, grid=["optim.lr=1e-3,2e-3,3e-3"], max_parallel=1, array=False)
    backend = FakeBackend()
    sweep.create(store, sweep.plan(store, d), backend=backend)
    monkeypatch.setattr(control, "backend_for", lambda spec: backend)
    out = sweep.cancel(store, "tiny-sweep", refresh=_set_states(store, {}))
    assert out["cancelled"] == [{"run": "tiny-sweep-0", "job_id": "101"}]
    assert out["never_submitted"] == ["tiny-sweep-1", "tiny-sweep-2"]
    assert backend.cancelled == ["101"]
    assert {r.state for r in store.runs(sweep="tiny-sweep")} == {"CANCELLED"}
    prog = sweep.advance(store, "tiny-sweep", backend=backend, refresh=_set_states(store, {}))
    assert prog.submitted == [] and prog.done


def test_table_sorts_by_best_loss(user_env, tmp_path) -> None:
    store = Store()
    d = _def(tmp_path, grid=["optim.lr=1e-3,2e-3,3e-3"], array=False)
    sweep.create(store, sweep.plan(store, d), backend=FakeBackend())
    for name, losses in (("tiny-sweep-0", [5.0, 4.0]), ("tiny-sweep-2", [5.0, 3.0, 3.5])):
        events = [{"event": "step", "step": i + 1, "loss": x} for i, x in enumerate(losses)]
        run_dir = Path(store.get_run(name).run_dir)
        (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    rows = sweep.table(store, "tiny-sweep")
    assert [r["name"] for r in rows] == ["tiny-sweep-2", "tiny-sweep-0", "tiny-sweep-1"]
    assert rows[0]["best_loss"] == 3.0 and rows[0]["params"] == {"optim.lr": "3e-3"}
    with pytest.raises(UsageError, match="no sweep named 'tiny-swep'; did you mean"):
        sweep.table(store, "tiny-swep")


def test_dry_run_cli_lists_points_and_one_script_per_shape(cli, tmp_path) -> None:
    root = f"cluster.runs_root={tmp_path / 'runs'}"
    args = ["sweep", "tiny", "-c", "dev", "--grid", "optim.lr=1e-3,2e-3", "-o", root]
    res = cli(*args, "--dry-run", "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert [p["name"] for p in out["points"]] == ["tiny-sweep-0", "tiny-sweep-1"]
    assert out["mode"] == "array" and len(out["scripts"]) == 2  # one shape + the array
    res = cli(
        *args,
        "--dry-run",
        "--no-array",
        "-o",
        "cluster.partition=other",
        "--grid",
        "cluster.qos=a,b",
    )
    assert res.code == 0, res.err
    assert res.out.count("#!/bin/bash") == 2  # two shapes (qos differs), no array
    assert Store().run_names() == []
