"""An attempt that stopped before training started (a missing data file, bad input) still
has its `exiting` event counted: that is the job's own word on how it ended."""

from __future__ import annotations

from olmoctl.core.track import classify as cl
from olmoctl.core.track.attempts import unstarted_exiting
from olmoctl.schemas.events import Exiting, parse_event


def _evs(*rows: dict) -> list:
    return [parse_event(r) for r in rows]


def test_an_exiting_before_any_started_is_the_attempts() -> None:
    events = _evs({"ts": 100.0, "event": "exiting", "reason": "error", "error": "data file x"})
    got = unstarted_exiting(events, since=99.0)
    assert isinstance(got, Exiting) and got.error == "data file x"
    verdict = cl.classify(slurm_state="FAILED", exit_code=None, node_list=[], batch_log=None,
                          rank_logs={}, exiting=got, down_nodes={})  # fmt: skip
    assert verdict.klass == cl.CODE_ERROR and verdict.reason == "data file x"


def test_an_earlier_attempts_or_another_jobs_exiting_is_not_taken() -> None:
    events = _evs(
        {"ts": 10.0, "event": "exiting", "reason": "error", "error": "old"},  # before submission
        {"ts": 200.0, "event": "started", "job_id": "7", "attempt": 0},
        {"ts": 250.0, "event": "exiting", "reason": "completed"},  # job 7's, inside its span
    )
    assert unstarted_exiting(events, since=100.0) is None
    later = [*events, *_evs({"ts": 300.0, "event": "exiting", "reason": "error", "error": "new"})]
    got = unstarted_exiting(later, since=100.0)
    assert got is not None and got.error == "new"  # after job 7 closed its span
    assert unstarted_exiting(later, since=400.0) is None  # written before this submission


def test_the_incarnation_counts_in_allocation_restarts_and_only_ascii_digits() -> None:
    from olmoctl.train.runtime.distributed import detect

    base = {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "1"}
    assert detect({**base, "SLURM_RESTART_COUNT": "2"}).attempt == 2
    assert detect({**base, "SLURM_RESTART_COUNT": "2", "OLMOCTL_INCARNATION": "3"}).attempt == 3
    assert detect({**base, "OLMOCTL_INCARNATION": "\u0663"}).attempt == 0  # Arabic-Indic 3


def test_a_ranks_own_error_leaves_the_no_restart_mark_and_a_lost_peer_does_not(
    tmp_path, monkeypatch
) -> None:
    from types import SimpleNamespace

    from olmoctl.train.run import _mark_no_restart

    denv = SimpleNamespace(job_id="7", attempt=1)
    _mark_no_restart(tmp_path, denv, "ZeroDivisionError")  # no restart loop: nothing
    assert not (tmp_path / "burnin").exists()
    _mark_no_restart(tmp_path / "gone", denv, "ZeroDivisionError")
    monkeypatch.setenv("OLMOCTL_INCARNATION", "1")
    _mark_no_restart(tmp_path / "gone", denv, "ZeroDivisionError")  # no run dir: none made
    assert not (tmp_path / "gone").exists()
    _mark_no_restart(
        tmp_path, denv, "RuntimeError: [gloo/transport/tcp/pair.cc:1] Connection closed by peer"
    )
    assert not (tmp_path / "burnin").exists()
    _mark_no_restart(tmp_path, denv, "Traceback...\nZeroDivisionError: division by zero")
    assert "ZeroDivisionError" in (tmp_path / "burnin" / "7-1.no-restart").read_text()
