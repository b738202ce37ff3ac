"""The wire protocol between a local olmoctl and `olmoctl _remote serve` on a login node:
framing, the version handshake, and JSON encodings of scheduler answers and bytes (the
format is described in olmoctl/backends/ssh.py)."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from olmoctl.backends.base import JobInfo, QueryResult

PROTOCOL = 1
MARKER = "@olmoctl-remote "
CONNECT_TIMEOUT_S = 15
HELLO_TIMEOUT_S = 120  # the remote python's start (a container may be slow to start)
REQUEST_TIMEOUT_S = 600  # sbatch through submitit, a big sacct
CACHE_TTL_S = 15.0  # answers prefetched by the `status` op are served this long


# -- the wire ---------------------------------------------------------------------------------
def encode_bytes(data: bytes) -> dict[str, str]:
    return {"z": base64.b64encode(zlib.compress(data, 6)).decode()}


def decode_bytes(value: dict[str, str]) -> bytes:
    return zlib.decompress(base64.b64decode(value["z"]))


def encode_query(res: QueryResult) -> dict[str, Any]:
    return {
        "jobs": {j: i.to_dict() for j, i in res.jobs.items()},
        "source": res.source,
        "note": res.note,
        "history": {j: [i.to_dict() for i in recs] for j, recs in res.history.items()},
    }


def decode_query(data: dict[str, Any]) -> QueryResult:
    return QueryResult(
        {j: JobInfo(**i) for j, i in data["jobs"].items()},
        data["source"],
        data.get("note", ""),
        history={j: [JobInfo(**i) for i in recs] for j, recs in data["history"].items()},
    )


def encode_jobs(jobs: dict[str, JobInfo]) -> dict[str, Any]:
    return {j: i.to_dict() for j, i in jobs.items()}


def decode_jobs(data: dict[str, Any]) -> dict[str, JobInfo]:
    return {j: JobInfo(**i) for j, i in data.items()}


def cache_key(op: str, args: dict[str, Any]) -> str:
    """The key a prefetched answer is filed under: the op and its arguments."""
    return json.dumps([op, args], sort_keys=True)


def frame(message: dict[str, Any]) -> bytes:
    # The leading newline ends whatever partial line a library may have printed.
    return ("\n" + MARKER + json.dumps(message) + "\n").encode()


def version_mismatch(local: str, remote: str, where: str) -> str:
    return (
        f"olmoctl versions differ: local {local}, remote {remote} on {where}; "
        "install the same olmoctl version on both sides"
    )


# -- the connection ------------------------------------------------------------------------
