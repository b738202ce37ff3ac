"""What one `status` will read from a cluster, declared before it reads any of it (a
backends.prefetch.Prefetch), so a backend that pays per round trip (ssh) fetches it all in
one request. Each read is declared with the same path, size and rule as the code that makes
it later, so its answer is found by construction:
  query / queued        status._refresh_group (prefetch.controller_asks)
  events tail           events.read_events (events_path, TAIL_BYTES)
  checkpoints           events.complete_checkpoints
  logs of an ending     backend.rank_logs / batch_log (Slurm's layout: backends.jobfiles),
                        attempts.classify_ended
                        (classify.TAIL_BYTES, BATCH_LOG_SUFFICES, ASK_NODES_AFTER)
"""

from __future__ import annotations

from olmoctl.backends import jobfiles
from olmoctl.backends import prefetch as pf
from olmoctl.core.track import attempts as att
from olmoctl.core.track import classify as cl
from olmoctl.core.track import events as ev


def status_reads(
    job_ids: list[str], to_classify: dict[str, str], run_dirs: list[str]
) -> pf.Prefetch:
    """`job_ids`: the live jobs queried; `to_classify`: job id -> run dir of every attempt
    not classified yet (it may end now); `run_dirs`: the runs whose events are read."""
    return pf.Prefetch(
        job_ids=list(job_ids),
        maybe_requeued=att.MAYBE_REQUEUED,
        live_states=att.LIVE_WORDS,  # the words, for the wire
        batch_log_suffices=cl.BATCH_LOG_SUFFICES,
        node_states_after=att.ASK_NODES_AFTER,
        attempts=[
            pf.AttemptLogs(
                job_id=job,
                batch=pf.read_tail(jobfiles.batch_path(run_dir, job), cl.TAIL_BYTES),
                ranks=pf.glob(*jobfiles.rank_log_glob(run_dir, job)),
                nbytes=cl.TAIL_BYTES,
            )
            for job, run_dir in sorted(to_classify.items())
        ],
        reads=[
            call
            for run_dir in run_dirs
            for call in (
                pf.read_tail(ev.events_path(run_dir), ev.TAIL_BYTES),
                pf.checkpoints(run_dir),
            )
        ],
    )
