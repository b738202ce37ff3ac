"""The wire protocol between a local olmoctl (backends/ssh.py) and `olmoctl _remote serve`
on a login node (backends/ssh_serve.py): framing, the version handshake, and JSON encodings
of scheduler answers and bytes.

One JSON document per line, both ways:
  remote -> local, first:  @olmoctl-remote {"hello": {"olmoctl": VERSION, "protocol": 1,
                                                      "home": ..., "host": ...}}
  local -> remote:          {"protocol": 1, "olmoctl": VERSION, "id": N,
                             "ops": [{"op": NAME, ...args}, ...], "stop_on_error": BOOL}
  remote -> local:          @olmoctl-remote {"id": N, "results": [{"ok": VALUE} |
                             {"error": MESSAGE, "exit_code": 1|2} | {"skipped": true}, ...]}
                            or {"id": N, "fatal": MESSAGE, "exit_code": 2} (version mismatch)
Bytes travel as {"z": base64(zlib(data))}, or {"refused": MESSAGE} for a file that is not
a regular file there (olmoctl.fileread.Refused, raised again on this side). Lines without
the marker (a login banner, a library's print) are ignored but kept for error messages.
Several ops ride one request; the ops and their arguments are the table `ssh_serve.OPS`. The
`prefetch` op takes a declared backends.prefetch.Prefetch and answers [op, args, answer] for
every call it covers.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.errors import flat
from olmoctl.fileread import Refused

PROTOCOL = 1
MARKER = "@olmoctl-remote "
CONNECT_TIMEOUT_S = 15
HELLO_TIMEOUT_S = 120  # the remote python's start (a container may be slow to start)
REQUEST_TIMEOUT_S = 600  # sbatch through submitit, a big sacct
CACHE_TTL_S = 15.0  # prefetched answers are served this long


# -- the wire ---------------------------------------------------------------------------------
def encode_bytes(data: bytes | Refused) -> dict[str, str]:
    if isinstance(data, Refused):  # not a regular file there: said, not read
        return {"refused": str(data)}
    return {"z": base64.b64encode(zlib.compress(data, 6)).decode()}


def decode_read(value: dict[str, str]) -> bytes | Refused:
    """A file read's answer: its bytes, or the login node's refusal (fileread.Refused)."""
    if "refused" in value:
        return Refused(flat(str(value["refused"]), 600))
    return zlib.decompress(base64.b64decode(value["z"]))


def decode_bytes(value: dict[str, str]) -> bytes:
    """A file read's bytes; a refusal is raised here as it is on the login node."""
    got = decode_read(value)
    if isinstance(got, Refused):
        raise got
    return got


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


def frame(message: dict[str, Any]) -> bytes:
    # The leading newline ends whatever partial line a library may have printed.
    return ("\n" + MARKER + json.dumps(message) + "\n").encode()


def version_mismatch(local: str, remote: str, where: str) -> str:
    return (
        f"olmoctl versions differ: local {local}, remote {remote} on {where}; "
        "install the same olmoctl version on both sides"
    )


# -- the connection ------------------------------------------------------------------------
