"""resume refusals, node health and its exclusions, watch leases (fake scheduler; the real
failures are in tests/integration/test_faults.py)."""

from __future__ import annotations

import pytest

from olmoctl.core.supervise import watch as supervise
from olmoctl.core.track.runs import spec_of
from olmoctl.errors import UsageError
from olmoctl.store import Store


def _end(store: Store, klass: str) -> None:
    with store.tx() as tx:
        a = tx.last_attempt("r")
        tx.update_attempt(a.id, state=klass, klass=klass, ended_at=1.0)


def test_resume_refuses_running_and_completed(run: Store) -> None:
    with pytest.raises(UsageError, match="still RUNNING"):
        supervise.resume(run, "r")
    _end(run, "COMPLETED")
    with pytest.raises(UsageError, match="run 'r' completed"):
        supervise.resume(run, "r", refresh=False)


def test_resume_excludes_bad_nodes_and_links_attempts(run: Store) -> None:
    _end(run, "NODE_FAIL")
    with run.tx() as tx:
        tx.node_failure("dev", "node2", "node failure on node2")
    res = supervise.resume(run, "r", refresh=False, overrides=["optim.lr=1e-3"])
    assert res.action == "submitted" and res.excluded == ["node2"]
    attempts = run.attempts("r")
    assert [a.attempt_no for a in attempts] == [1, 2]
    assert "#SBATCH --exclude=node2" in attempts[1].script
    spec = spec_of(run.get_run("r"))
    assert spec.recipe.optim.lr == 1e-3 and spec.overrides[-1] == "optim.lr=1e-3"


def test_nodes_listing_and_clear(cli, run: Store) -> None:
    with run.tx() as tx:
        tx.node_failure("dev", "node3", "node failure on node3")
        tx.node_failure("dev", "node3", "node failure on node3")
    run.close()
    listed = cli("nodes", "--json")
    assert listed.code == 0 and '"failures": 2' in listed.out
    assert cli("nodes", "--clear", "node3").code == 0
    assert cli("nodes", "--json").out.strip() == "[]"
    res = cli("nodes", "--clear", "node9")
    assert res.code == 2 and "node 'node9' has no recorded failures" in res.err


def test_lease_is_exclusive_until_it_expires(run: Store) -> None:
    assert supervise.take_lease(run, "r", "a", ttl=60)
    assert not supervise.take_lease(run, "r", "b", ttl=60)
    assert supervise.take_lease(run, "r", "a", ttl=60)  # the holder renews
    supervise.release_leases(run, "a")
    assert supervise.take_lease(run, "r", "b", ttl=60)
    assert supervise.take_lease(run, "s", "a", ttl=-1)  # expired at once
    assert supervise.take_lease(run, "s", "b", ttl=60)
