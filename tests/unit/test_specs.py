"""The one run-spec builder: launch, launch --from, resume and sweep points give the same
spec (and the same error) for the same inputs; free names; the one error formatter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from olmoctl.core import sweep
from olmoctl.core.launch import repro
from olmoctl.core.launch import submit as launch
from olmoctl.core.launch.names import Taken, free_name
from olmoctl.core.launch.specs import resolve
from olmoctl.core.supervise import watch as supervise
from olmoctl.core.track.runs import spec_of
from olmoctl.errors import UsageError
from olmoctl.schemas import RunSpec
from olmoctl.store import Store
from olmoctl.train.runtime.config import load_job_config
from tests.unit.test_store import FakeBackend

LR = "optim.lr=1e-3"


@pytest.fixture
def store(user_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A store holding run `r` (tiny on dev, one override), its only attempt ended by a
    node failure, so it can be resumed."""
    store = Store()
    fake = FakeBackend()
    monkeypatch.setattr(supervise, "backend_for", lambda spec: fake)
    spec = launch.prepare(store, "tiny", "dev", **_launch_args(tmp_path, "r", LR))
    launch.submit_attempt(store, spec, fake, new_run=True)
    with store.tx() as tx:
        a = tx.last_attempt("r")
        tx.update_attempt(a.id, state="NODE_FAIL", klass="NODE_FAIL", ended_at=1.0)
    return store


def _launch_args(tmp_path: Path, name: str | None, *overrides: str) -> dict:
    return {
        "nodes": 1,
        "name": name,
        "time_limit": None,
        "overrides": [f"cluster.runs_root={tmp_path / 'runs'}", *overrides],
    }


def _launched(store: Store, tmp_path: Path, name: str, *overrides: str) -> RunSpec:
    return launch.prepare(store, "tiny", "dev", **_launch_args(tmp_path, name, *overrides))


def test_from_gives_the_spec_launch_gives(store: Store, tmp_path: Path) -> None:
    same = repro.plan_from(store, "r", name="b", overrides=[]).spec
    assert same == _launched(store, tmp_path, "b", LR)
    more = repro.plan_from(store, "r", name="c", overrides=["train.max_steps=7"]).spec
    assert more == _launched(store, tmp_path, "c", LR, "train.max_steps=7")
    assert more.overrides[-2:] == [LR, "train.max_steps=7"]


def test_from_without_a_name_picks_the_next_free_one(store: Store, tmp_path: Path) -> None:
    spec = repro.plan_from(store, "r", name=None, overrides=[]).spec
    assert spec == _launched(store, tmp_path, "r-2", LR)
    with pytest.raises(UsageError, match=r"run 'r' already exists; pick another --name"):
        repro.plan_from(store, "r", name="r", overrides=[])


def test_resume_keeps_the_spec_and_adds_overrides(store: Store, tmp_path: Path) -> None:
    before = spec_of(store.get_run("r"))
    supervise.resume(store, "r", refresh=False)
    assert spec_of(store.get_run("r")) == before
    _end_last(store)
    supervise.resume(store, "r", refresh=False, overrides=["train.max_steps=7"])
    # What a launch of the same inputs under the same name would have been.
    runs = f"cluster.runs_root={tmp_path / 'runs'}"
    expected = resolve("tiny", "dev", name="r", overrides=[runs, LR, "train.max_steps=7"])
    assert spec_of(store.get_run("r")) == expected


def _end_last(store: Store) -> None:
    with store.tx() as tx:
        a = tx.last_attempt("r")
        tx.update_attempt(a.id, state="NODE_FAIL", klass="NODE_FAIL", ended_at=1.0)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.n_heads=3", "-o model.n_heads=3: model.d_model (64) must be divisible by"),
        ("optim.lrr=1", "unknown key 'optim.lrr'; did you mean 'optim.lr'"),
        ("cluster.partition=a;b", "cluster.partition: 'a;b' is not allowed here"),
    ],
)
def test_a_bad_override_reads_the_same_everywhere(
    store: Store, tmp_path: Path, override: str, expected: str
) -> None:
    said = []
    for attempt in (
        lambda: _launched(store, tmp_path, "x", override),
        lambda: repro.plan_from(store, "r", name="x", overrides=[override]),
        lambda: supervise.resume(store, "r", refresh=False, overrides=[override]),
    ):
        with pytest.raises(UsageError) as e:
            attempt()
        said.append(str(e.value))
    assert expected in said[0]
    # launch names the override it applied after the profile's own; the others the same one.
    assert len({s.replace(f"-o cluster.runs_root={tmp_path / 'runs'} ", "") for s in said}) == 1


def test_sweep_points_are_launch_specs(store: Store, tmp_path: Path) -> None:
    runs = f"cluster.runs_root={tmp_path / 'runs'}"
    d = sweep.definition(
        recipe="tiny", cluster="dev", grid=["train.max_steps=5,7"], overrides=[runs]
    )
    plan = sweep.plan(store, d)
    for point, steps in zip(plan.points, (5, 7), strict=True):
        expected = resolve(
            "tiny", "dev", name=point.name, overrides=[runs, f"train.max_steps={steps}"]
        )
        assert point.spec == expected


def test_free_names_see_the_store_and_the_disk(store: Store, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "r-2").mkdir(parents=True)
    (runs / "r-2" / "spec.json").write_text("{}")
    assert "r" in Taken(store, str(runs)) and "r-2" in Taken(store, str(runs))
    assert free_name(store, "r", str(runs)) == "r-3"
    with pytest.raises(UsageError, match=r"run directory .*/r-2 already holds a run"):
        _launched(store, tmp_path, "r-2")


def test_the_job_reads_spec_errors_with_the_same_formatter(tmp_path: Path) -> None:
    data = resolve("tiny", "dev").model_dump(mode="json")
    data["recipe"]["optim"]["lrr"] = 1
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError) as e:
        load_job_config(path)
    said = str(e.value)
    assert said.startswith(
        f"{path}: unknown key 'recipe.optim.lrr'; did you mean 'recipe.optim.lr'"
    )
    assert "\n" not in said
