"""What `watch` tells people about that it did not do itself: attempts that ended (each
classified: its class, reason and evidence; or completed) and nodes that reached the
exclusion threshold. What was already so when the watcher started is not news."""

from __future__ import annotations

from olmoctl.core.supervise.notify import Notice
from olmoctl.core.track import classify as cl
from olmoctl.core.track.runs import find_run, spec_of
from olmoctl.store import DamagedRow, Run, Store


class Observer:
    """Remembers what it has seen; `changes()` returns a Notice for each new thing."""

    def __init__(self, store: Store, runs: list[str] | None) -> None:
        self.runs = runs
        self.seen_attempts: set[int] = set()
        self.seen_nodes: set[tuple[str, str]] = set()
        self._scan(store, announce=False)  # the starting state: remembered, not announced

    def _runs(self, store: Store) -> list[Run]:
        return store.runs() if self.runs is None else [find_run(store, r) for r in self.runs]

    def changes(self, store: Store) -> list[Notice]:
        return self._scan(store, announce=True)

    def _scan(self, store: Store, announce: bool) -> list[Notice]:
        out: list[Notice] = []
        thresholds: dict[str, int] = {}
        for run in self._runs(store):
            try:
                thresholds.setdefault(run.cluster, spec_of(run).cluster.node_failure_threshold)
            except DamagedRow:
                continue
            for a in store.attempts(run.name):
                if a.klass is None or a.id in self.seen_attempts:
                    continue
                self.seen_attempts.add(a.id)
                if not announce:
                    continue
                job = f"attempt {a.attempt_no} (job {a.job_id})"
                if a.klass == cl.COMPLETED:
                    text = f"{job} completed at step {a.last_step}"
                    out.append(Notice("completed", run.name, text, _fields(a)))
                else:
                    text = f"{job} ended: {a.klass}: {a.reason or '-'}"
                    out.append(Notice("failure", run.name, text, _fields(a)))
        for row in store.nodes():
            limit = thresholds.get(row.cluster)
            key = (row.cluster, row.node)
            if limit is None or row.failures < limit or key in self.seen_nodes:
                continue
            self.seen_nodes.add(key)
            if announce:
                text = f"node {row.node} of {row.cluster} excluded: {row.last_reason or '-'}"
                fields = {"cluster": row.cluster, "node": row.node, "reason": row.last_reason}
                fields["failures"] = row.failures
                out.append(Notice("node_excluded", None, text, fields))
        return out


def _fields(a: object) -> dict[str, object]:
    keys = ("attempt_no", "job_id", "klass", "reason", "node_list", "last_step", "evidence")
    out = {k: getattr(a, k) for k in keys}
    out["class"] = out.pop("klass")
    return out
