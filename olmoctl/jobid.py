"""A job id as olmoctl keeps it: the scheduler's id text, plus, where ids are reused (a local
job's id is a pid; Linux hands pids out again), the identity recorded when the job was
submitted, which tells this job from a later one given the same id.

JobId is a str, so every place that passes job ids along (the store's rows, status, cancel,
watch, sweeps, doctor) passes the identity with it unchanged, and the backend checks it on
every use. Text derived from it (f-strings, slices, JSON) is a plain str without an identity:
a backend that needs one then refuses to act, which is the safe side to fail on."""

from __future__ import annotations


class JobId(str):
    identity: str | None

    def __new__(cls, value: str, identity: str | None = None) -> JobId:
        self = super().__new__(cls, value)
        self.identity = identity
        return self


def identity_of(job_id: object) -> str | None:
    """The identity recorded with `job_id` (None: none was, or it is a plain str)."""
    return job_id.identity if isinstance(job_id, JobId) else None
