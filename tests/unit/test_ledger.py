"""The goodput ledger (core/track/ledger.py): made-up event streams for a clean run, a node
loss restarted in the allocation, a requeue with queue time, a resume by watch, hangs and
sync/async saves. Each asserts the categories and that they sum to the wall time."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from olmoctl.core.track.ledger import CATEGORIES, ledger
from olmoctl.schemas.events import (
    Burnin,
    CheckpointSaved,
    Event,
    Exiting,
    Heartbeat,
    Started,
    Step,
)
from olmoctl.store import Attempt, AttemptState


def attempt(
    no: int,
    job: str | None,
    sub: float | None,
    start: float | None,
    end: float | None,
    klass: str | None,
    index: int = 0,
    state: str | None = None,
) -> Attempt:
    return Attempt(
        id=no, run_name="r", attempt_no=no, job_id=job, cluster="dev", nodes=2, node_list=None,
        submitted_at=sub, started_at=start, ended_at=end,
        state=AttemptState(state or ("RUNNING" if end is None else klass or "COMPLETED")),
        exit_code=None, reason=None, first_step=None, last_step=None, script=None, evidence={},
        restart_index=index, klass=klass,
    )  # fmt: skip


def started(ts: float, job: str | None, index: int = 0, step: int = 0) -> Started:
    return Started(ts=ts, job_id=job, attempt=index, start_step=step)


def steps(*pairs: tuple[float, int]) -> list[Event]:
    return [Step(ts=ts, step=s, loss=1.0) for ts, s in pairs]


def save(ts: float, step: int, seconds: float, stall: float | None, mode: str) -> CheckpointSaved:
    return CheckpointSaved(ts=ts, step=step, seconds=seconds, stall_s=stall, mode=mode)


def burnin(ts: float, seconds: float, job: str, index: int = 0) -> Burnin:
    return Burnin(ts=ts, seconds=seconds, job_id=job, attempt=index, action="train")


def check(got: dict[str, Any], want: dict[str, float], wall: float) -> None:
    """The named categories as wanted, every other one zero, and the sum the wall time."""
    assert got["wall_s"] == pytest.approx(wall)
    secs = got["seconds"]
    assert list(secs) == list(CATEGORIES)
    assert {k: v for k, v in secs.items() if v} == pytest.approx(want, abs=1e-6)
    assert sum(secs.values()) == pytest.approx(wall, abs=1e-6)


def test_clean_run() -> None:
    events = [
        burnin(20, 8, "1"),
        started(30, "1"),
        *steps((40, 10), (50, 20)),
        save(55, 20, 5, 5, "sync"),  # training waits [50, 55]
        *steps((65, 30)),
        Exiting(ts=70, reason="completed", step=30),
    ]
    got = ledger(events, [attempt(1, "1", 0, 10, 72, "COMPLETED")], now=1000)
    want = {"queued": 10, "starting": 12, "burnin": 8, "productive": 30, "checkpoint": 5}
    check(got, {**want, "idle": 7}, 72)  # idle: the wind-down after the last step


def test_node_loss_restarted_in_the_allocation() -> None:
    """Job 100 loses a node after step 30 (logged at 48); Slurm ends that incarnation at 70,
    the survivors' record starts at once; backoff, burn-in [80, 85], `started` at 95 from
    the checkpoint of step 20: steps 21-30 are done again."""
    events = [
        burnin(10, 4, "100"),
        started(15, "100"),
        *steps((25, 10), (35, 20)),
        save(38, 20, 3, 3, "sync"),
        *steps((48, 30)),
        Heartbeat(ts=60, step=30),  # no progress: not a mark
        burnin(85, 5, "100", index=1),
        started(95, "100", index=1, step=20),
        *steps((105, 30), (115, 40)),
    ]
    attempts = [
        attempt(1, "100", 0, 5, 70, "NODE_FAIL"),
        attempt(2, "100", 70, 70, 120, "COMPLETED", index=1),
    ]
    got = ledger(events, attempts, now=1000)
    check(
        got,
        {
            "queued": 5,
            "starting": 6 + 10,  # [5, 15] less burn-in; the restart's from its burn-in's end
            "burnin": 4 + 5,
            "productive": 30 + 10,
            "checkpoint": 3,
            "redone": 10,
            "restart": 22 + 10,  # lost node's tail [48, 70] + detection/backoff [70, 80]
            "idle": 5,
        },
        120,
    )


@pytest.mark.parametrize("seen_at", [150.0, 300.0])
def test_requeued_with_queue_time(seen_at: float) -> None:
    """Preempted at 140: it saves (sync, 4 s), Slurm requeues job 200 at 150, it starts
    again at 400. Pending counts from the requeue even when status first saw the new
    incarnation later (submitted_at = when it was seen)."""
    events = [
        started(110, "200"),
        *steps((120, 10), (130, 20)),
        save(140, 20, 8, 1, "async"),  # staged [132, 133], written in the background
        *steps((140, 30)),
        save(145, 30, 4, 4, "sync"),
        Exiting(ts=146, reason="preempted", step=30),
        started(420, "200", index=1, step=30),
        *steps((430, 40)),
    ]
    attempts = [
        attempt(1, "200", 0, 100, 150, "PREEMPTED"),
        attempt(2, "200", seen_at, 400, 435, "COMPLETED", index=1),
    ]
    got = ledger(events, attempts, now=1000)
    want = {"queued": 100 + 250, "starting": 10 + 20, "productive": 29 + 10, "checkpoint": 5}
    check(got, {**want, "restart": 6, "idle": 5}, 435)


def test_resumed_by_watch_from_an_older_checkpoint() -> None:
    """Job 1 dies at step 30 (logged at 40); watch resubmits job 2 after a backoff; it
    resumes from step 10, so 20 steps are redone, and its first logged interval (steps
    11-40) is two thirds redone."""
    events = [
        started(10, "1"),
        *steps((20, 10), (30, 20), (40, 30)),
        started(100, "2", step=10),
        *steps((130, 40), (140, 50)),
    ]
    attempts = [
        attempt(1, "1", 0, 5, 50, "NODE_FAIL"),
        attempt(2, "2", 60, 90, 145, "COMPLETED"),
    ]
    got = ledger(events, attempts, now=1000)
    want = {"queued": 5 + 30, "starting": 5 + 10, "productive": 30 + 10 + 10, "redone": 20}
    check(got, {**want, "restart": 10 + 10, "idle": 5}, 145)  # tail + backoff [50, 60]


def test_burnin_requeues_an_incarnation_with_no_end_recorded() -> None:
    """Job 17's burn-in finds a slow node and requeues (sacct: REQUEUED, no end; class
    BURNIN); the next incarnation is seen at 283 and starts at 293 (the dev cluster's
    test_without_spares run, rounded)."""
    events = [
        Burnin(ts=282, seconds=48, job_id="17", attempt=0, action="requeue"),
        Burnin(ts=301, seconds=3, job_id="17", attempt=1, action="train"),
        started(310, "17", index=1),
        *steps((320, 40)),
    ]
    attempts = [
        attempt(1, "17", 231, 231, None, "BURNIN", state="REQUEUED"),
        attempt(2, "17", 283, 293, 324, "COMPLETED", index=1),
    ]
    got = ledger(events, attempts, now=1000)
    want = {"starting": 3 + 14, "burnin": 48 + 3, "restart": 1, "queued": 10}
    check(got, {**want, "productive": 10, "idle": 4}, 93)


def test_live_restart_in_the_allocation_before_its_started_event() -> None:
    """A cut link: job 38's first incarnation ends at 918, the next starts there at once,
    burns in [927, 930] and is importing at 940: detection and backoff are the restart."""
    events = [
        started(896, "38"),
        *steps((900, 10)),
        Burnin(ts=930, seconds=3, job_id="38", attempt=1, action="train"),
    ]
    attempts = [
        attempt(1, "38", 871, 871, 918, "NODE_FAIL"),
        attempt(2, "38", 918, 918, None, None, index=1),
    ]
    got = ledger(events, attempts, now=940)
    want = {"starting": 25 + 10, "productive": 4, "restart": 18 + 9, "burnin": 3}
    check(got, want, 69)


def test_hang_cancelled_by_watch() -> None:
    events = [started(10, "1"), *steps((20, 10)), Heartbeat(ts=500, step=10)]
    got = ledger(events, [attempt(1, "1", 0, 0, 2000, "HANG")], now=5000)
    check(got, {"starting": 10, "productive": 10, "idle": 1980}, 2000)


def test_live_run_hung_only_past_the_timeout() -> None:
    """A live attempt's time since its last mark is training in flight, unless nothing has
    moved for longer than the hang timeout; a heartbeat whose step advanced is a mark."""
    events = [started(10, "1"), *steps((20, 10)), Heartbeat(ts=30, step=15)]
    live = [attempt(1, "1", 0, 0, None, None)]
    check(
        ledger(events, live, now=100, hang_timeout_s=100), {"starting": 10, "productive": 90}, 100
    )
    got = ledger(events, live, now=2000, hang_timeout_s=1800)
    check(got, {"starting": 10, "productive": 20, "idle": 1970}, 2000)
    check(ledger(events, live, now=2000), {"starting": 10, "productive": 1990}, 2000)


@pytest.mark.parametrize(
    ("mode", "stall", "want_ckpt"),
    [("sync", None, 10.0), ("sync", 10.0, 10.0), ("async", 0.5, 0.5)],
)
def test_checkpoint_stalls(mode: str, stall: float | None, want_ckpt: float) -> None:
    """A sync save stalls training its whole time (stall_s absent: its seconds); an async
    one only its stall_s, at the save's start; the rest is training."""
    events = [started(0, "1"), *steps((10, 10)), save(20, 10, 10, stall, mode), *steps((40, 20))]
    got = ledger(events, [attempt(1, "1", 0, 0, 40, "COMPLETED")], now=99)
    check(got, {"productive": 40 - want_ckpt, "checkpoint": want_ckpt}, 40)


def test_only_queued_and_nothing_known() -> None:
    check(
        ledger([], [attempt(1, "1", 100, None, None, None, state="PENDING")], 130),
        {"queued": 30},
        30,
    )
    assert ledger([], [], 5.0) == {}
    assert ledger([], [attempt(1, None, None, None, None, None, state="SUBMIT_FAILED")], 5) == {}


def test_events_without_job_ids_match_by_time() -> None:
    events = [started(10, None), *steps((20, 10))]
    got = ledger(events, [attempt(1, "local-1", 0, 5, 25, "COMPLETED")], now=99)
    check(got, {"queued": 5, "starting": 5, "productive": 10, "idle": 5}, 25)


_ts = st.floats(-50, 500, allow_nan=False)
_opt = st.none() | _ts
_odd = st.none() | st.floats(-5, 100) | st.sampled_from([math.nan, math.inf, -math.inf, 1e308])
_ev_ts = _opt | st.sampled_from([math.nan, math.inf])
_event = st.one_of(
    st.builds(Started, ts=_ev_ts, job_id=st.sampled_from(["1", "2", None]),
              attempt=st.integers(0, 2), start_step=st.none() | st.integers(-5, 50)),
    st.builds(Step, ts=_ev_ts, step=st.none() | st.integers(-5, 60)),
    st.builds(Heartbeat, ts=_opt, step=st.none() | st.integers(-5, 60)),
    st.builds(CheckpointSaved, ts=_opt, step=st.none() | st.integers(-5, 60),
              seconds=_odd, stall_s=_odd,
              mode=st.sampled_from(["sync", "async", None])),
    st.builds(Burnin, ts=_ev_ts, seconds=_odd,
              job_id=st.sampled_from(["1", "2"]), attempt=st.integers(0, 2)),
)  # fmt: skip
_attempt = st.builds(
    attempt,
    no=st.integers(1, 5),
    job=st.sampled_from(["1", "2", None]),
    sub=_opt,
    start=_opt,
    end=_opt,
    klass=st.sampled_from([None, "COMPLETED", "NODE_FAIL", "HANG", "PREEMPTED"]),
    index=st.integers(0, 2),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_event, max_size=25), st.lists(_attempt, max_size=4), _ts, st.none() | _ts)
def test_any_stream_sums_to_the_wall_time(
    events: list[Event], attempts: list[Attempt], now: float, hang: float | None
) -> None:
    """Out-of-order, negative, missing and contradictory fields: still one category per
    second, none negative, summing to the wall time."""
    got = ledger(events, attempts, now, hang_timeout_s=hang)
    if not got:
        return
    secs = got["seconds"]
    assert all(v >= 0 for v in secs.values())
    assert sum(secs.values()) == pytest.approx(got["wall_s"], abs=1e-6)
    assert got["wall_s"] >= 0
