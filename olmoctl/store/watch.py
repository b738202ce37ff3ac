"""What `watch` keeps: leases (one watcher acts on a run) and its log of actions."""

from __future__ import annotations

import time

from olmoctl.store.base import Queries


class ActionReads(Queries):
    def has_action(self, run: str, action: str) -> bool:
        row = (
            self._db()
            .execute("SELECT 1 FROM actions WHERE run_name = ? AND action = ?", (run, action))
            .fetchone()
        )
        return row is not None


class WatchWrites(Queries):
    def log_action(self, run: str | None, action: str, detail: str = "") -> None:
        self._db().execute(
            "INSERT INTO actions (ts, run_name, action, detail) VALUES (?,?,?,?)",
            (time.time(), run, action, detail),
        )

    def take_lease(self, run: str, owner: str, ttl: float) -> bool:
        """Take or renew the run's lease; False when another owner holds an unexpired one.
        Atomic only inside a transaction (Store.tx)."""
        now = time.time()
        row = self._db().execute("SELECT * FROM leases WHERE run_name = ?", (run,)).fetchone()
        if row is not None and row["owner"] != owner and row["expires_at"] > now:
            return False
        self._db().execute(
            "INSERT INTO leases (run_name, owner, expires_at) VALUES (?,?,?) "
            "ON CONFLICT(run_name) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at",
            (run, owner, now + ttl),
        )
        return True

    def release_leases(self, owner: str) -> None:
        self._db().execute("DELETE FROM leases WHERE owner = ?", (owner,))
