"""watch --straggler-policy: a node whose ranks compute slower than the rest for several
log intervals in a row (the job's `straggler` events, olmoctl.train.observe.stragglers).

`report` says so once per attempt and node. `restart` also excludes the node (node health,
with the measured ratio as the reason, so `olmoctl nodes` shows why) and asks the job to
save and stop the way the time-limit warning does (backend.request_save); the job requeues
itself and `watch` steers the requeued job off the node (or resumes without it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from olmoctl.backends.base import NotSupported
from olmoctl.backends.registry import backend_for
from olmoctl.core.supervise.notify import Notice
from olmoctl.core.track import attempts as att
from olmoctl.core.track import events as ev
from olmoctl.core.track.runs import spec_of
from olmoctl.errors import OlmoctlError, shown
from olmoctl.schemas.events import Event, Straggler
from olmoctl.schemas.shellsafe import check_host
from olmoctl.store import Attempt, AttemptState, Run, Store

POLICIES = ("report", "restart")
LogAction = Callable[[Store, str, str, str], None]


@dataclass(frozen=True)
class StragglerPolicy:
    action: str = "report"  # one of POLICIES
    ratio: float = 1.5  # slowest rank's compute per step / the median rank's
    intervals: int = 3  # consecutive log intervals over the ratio, on the same node


def persistent(events: list[Event], ratio: float, intervals: int) -> Straggler | None:
    """The newest straggler event if the last `intervals` of them all name the same node
    at `ratio` or more, else None."""
    seen = [e for e in events if isinstance(e, Straggler)][-intervals:]
    if len(seen) < intervals or not seen[-1].node:
        return None
    node = seen[-1].node
    if all(e.node == node and e.ratio is not None and e.ratio >= ratio for e in seen):
        return seen[-1]
    return None


def _is_host(node: str) -> bool:
    """Only a real host name goes into node health (it ends up in --exclude=)."""
    try:
        check_host(node)
    except ValueError:
        return False
    return True


def reason(sg: Straggler, policy: StragglerPolicy) -> str:
    return (
        f"straggler: {sg.ratio:.2f}x the median compute per step "
        f"({sg.seconds:.3g}s vs {sg.median_s:.3g}s, >= {policy.ratio:g}x for "
        f"{policy.intervals} intervals) at step {sg.step}"
    )


def check(
    store: Store, run: Run, last: Attempt, policy: StragglerPolicy, log_action: LogAction
) -> tuple[list[str], list[Notice]]:
    """Act on a running attempt's stragglers; (lines for the watch output, notices).
    `log_action(store, run, key, detail)`: the watch action log (supervise.log_action)."""
    if last.state != AttemptState.RUNNING:
        return [], []
    spec = spec_of(run)
    backend = backend_for(spec)
    events = ev.read_events(run.run_dir, fs=backend.files)
    seg = att.segment(events, last.job_id, last.restart_index)
    sg = persistent(seg, policy.ratio, policy.intervals)
    if sg is None or sg.node is None:
        return [], []
    why = reason(sg, policy)
    fields = {
        "node": sg.node,
        "rank": sg.rank,
        "ratio": sg.ratio,
        "seconds": sg.seconds,
        "median_s": sg.median_s,
        "step": sg.step,
        "job_id": last.job_id,
        "policy": policy.action,
    }
    key = f"straggler:{last.id}:{sg.node}"
    if store.has_action(run.name, key):
        return [], []
    lines, notices = [], []
    text = f"node {sg.node} is a straggler: {why.removeprefix('straggler: ')}"
    if policy.action == "restart" and not _is_host(sg.node):
        text += f"; not excluded: {shown(sg.node)} is not a host name"
    elif policy.action == "restart":
        with store.tx() as tx:
            tx.exclude_node(spec.cluster.name, sg.node, why, spec.cluster.node_failure_threshold)
        try:
            backend.request_save(last.job_id or "", run.run_dir)
            text += f"; excluded, job {last.job_id} asked to save and restart without it"
        except NotSupported as e:
            text += f"; excluded for later jobs, but this job cannot be restarted: {e}"
        except OlmoctlError as e:
            text += f"; excluded for later jobs, but asking the job to save failed: {e}"
    log_action(store, run.name, key, text)
    lines.append(f"{run.name}: {text}")
    notices.append(Notice("straggler", run.name, text, fields))
    return lines, notices
