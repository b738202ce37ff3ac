"""`olmoctl _remote`: the login node's half of a remote (ssh) cluster. Hidden; the local
olmoctl starts `_remote serve` over its one SSH connection and sends it JSON requests
(wire format: olmoctl/backends/ssh.py). Each op runs here with the ordinary Slurm backend
and plain file I/O (backends.files.LocalFiles); nothing here touches a state store.

`_remote call` answers one request read from stdin (unframed), for scripts and debugging:
  echo '{"olmoctl": "0.1.0", "id": 1, "ops": [{"op": "glob", "folder": "/x", "pattern": "*"}]}' \
    | olmoctl _remote call
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

import typer

app = typer.Typer(
    help="Internal: the remote side of an ssh cluster (JSON on stdin/stdout).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Attempts that ended in one of these are classified from the batch log alone; the others
# (FAILED...) need the tails of the rank logs too.
_NO_RANK_LOGS = frozenset(
    {"COMPLETED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "REQUEUED", "OUT_OF_MEMORY"}
)


class _Ops:
    """The ops a request may name; each takes JSON arguments and returns JSON."""

    def __init__(self) -> None:
        from olmoctl.backends.files import LOCAL

        self.fs = LOCAL
        self._slurm: Any = None

    @property
    def slurm(self) -> Any:
        if self._slurm is None:
            from olmoctl.backends.slurm import SlurmBackend

            self._slurm = SlurmBackend()
        return self._slurm

    @staticmethod
    def _spec(data: dict[str, Any]) -> Any:
        from olmoctl.schemas import RunSpec

        return RunSpec.model_validate(data)

    # scheduler
    def check_reachable(self, spec: dict[str, Any]) -> None:
        self.slurm.check_reachable(self._spec(spec))

    def submit(
        self,
        spec: dict[str, Any],
        script: str,
        files: dict[str, list[Any]] | None = None,
        new_run: bool = False,
    ) -> list[str]:
        """Submit; with `files`, write the run directory first and remove it again if this
        call created it and the submission fails."""
        run = self._spec(spec)
        created = self.write_run_dir(run.run_dir, files, new_run) if files is not None else False
        try:
            job_id, submitted = self.slurm.submit(run, script)
        except BaseException:
            if created:
                self.fs.remove_run_dir(run.run_dir)
            raise
        return [job_id, submitted]

    def query(self, job_ids: list[str]) -> dict[str, Any]:
        from olmoctl.backends.ssh import encode_query

        return encode_query(self.slurm.query(dict.fromkeys(job_ids, "")))

    def queued(self, job_ids: list[str]) -> dict[str, Any]:
        from olmoctl.backends.ssh import encode_jobs

        return encode_jobs(self.slurm.queued(job_ids))

    def node_states(self, nodes: str) -> dict[str, list[str]]:
        return {n: list(v) for n, v in self.slurm.node_states(nodes).items()}

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        return bool(self.slurm.exclude_pending(job_id, nodes))

    def cancel(self, job_id: str) -> None:
        self.slurm.cancel(job_id, "")

    # files
    def write_run_dir(self, run_dir: str, files: dict[str, list[Any]], new_run: bool) -> bool:
        wire = {rel: (str(text), int(mode)) for rel, (text, mode) in files.items()}
        return self.fs.write_run_dir(run_dir, wire, new_run=new_run)

    def remove_run_dir(self, run_dir: str) -> None:
        from pathlib import Path

        from olmoctl.errors import OlmoctlError

        root = Path(run_dir)
        if root.exists() and not (root / "spec.json").exists() and any(root.iterdir()):
            raise OlmoctlError(f"{run_dir} is not a run directory; not removing it")
        self.fs.remove_run_dir(run_dir)

    def read_tail(self, path: str, nbytes: int | None) -> dict[str, str]:
        from olmoctl.backends.ssh import encode_bytes

        return encode_bytes(self.fs.read_tail(path, nbytes))

    def read_many(self, items: list[list[Any]]) -> list[dict[str, str]]:
        from olmoctl.backends.ssh import encode_bytes

        return [encode_bytes(b) for b in self.fs.read_many([(str(p), int(o)) for p, o in items])]

    def glob(self, folder: str, pattern: str) -> list[str]:
        return self.fs.glob(folder, pattern)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def checkpoints(self, run_dir: str) -> list[list[Any]]:
        return [list(c) for c in self.fs.checkpoints(run_dir)]

    # everything `status` reads, in one answer
    def status(
        self, job_ids: list[str], job_dirs: dict[str, str], run_dirs: list[str]
    ) -> list[list[Any]]:
        """[op, args, answer] for: the one sacct of `job_ids` (squeue for those that may have
        been requeued), then per run dir the events tail and checkpoints, per job that ended
        its batch log tail, rank log list (and tails when the ranks must be read) and the
        state of its nodes after a node failure. The local side files each answer under
        (op, args) and serves its own calls from there."""
        from olmoctl.backends import jobfiles
        from olmoctl.backends.base import QueryResult
        from olmoctl.core import classify as cl
        from olmoctl.core import events as ev
        from olmoctl.core.attempts import MAYBE_REQUEUED
        from olmoctl.core.store import LIVE_STATES

        out: list[list[Any]] = []
        res = QueryResult({}, "sacct")

        def put(op: str, answer: Any, **args: Any) -> None:
            out.append([op, args, answer])

        if job_ids:
            res = self.slurm.query(dict.fromkeys(job_ids, ""))
            put("query", _encode_query(res), job_ids=job_ids)
            maybe = [j for j in job_ids if res.jobs.get(j) and res.jobs[j].state in MAYBE_REQUEUED]
            if maybe:
                put("queued", self.queued(maybe), job_ids=maybe)
        for job, run_dir in sorted(job_dirs.items()):
            # An attempt still to be classified: one of these jobs that ended, or one that
            # ended earlier (not queried: its Slurm record is in the store already).
            ended = [r for r in res.history.get(job) or [] if r.state not in LIVE_STATES]
            if job in job_ids and not ended:
                continue
            folder, pattern = jobfiles.rank_log_glob(run_dir, job)
            ranks = self.fs.glob(folder, pattern)
            put("glob", ranks, folder=folder, pattern=pattern)
            paths = [jobfiles.batch_path(run_dir, job)]
            if any(r.state not in _NO_RANK_LOGS for r in ended):
                paths += ranks
            for p in paths:
                put("read_tail", self.read_tail(p, cl.TAIL_BYTES), path=p, nbytes=cl.TAIL_BYTES)
            for r in ended:
                if r.state == "NODE_FAIL" and r.node_list:
                    put("node_states", self.node_states(r.node_list), nodes=r.node_list)
        for run_dir in run_dirs:
            path = ev.events_path(run_dir)
            put("read_tail", self.read_tail(path, ev.TAIL_BYTES), path=path, nbytes=ev.TAIL_BYTES)
            put("checkpoints", self.checkpoints(run_dir), run_dir=run_dir)
        return out


OPS = frozenset(
    {
        "check_reachable",
        "submit",
        "query",
        "queued",
        "node_states",
        "exclude_pending",
        "cancel",
        "write_run_dir",
        "remove_run_dir",
        "read_tail",
        "read_many",
        "glob",
        "exists",
        "checkpoints",
        "status",
    }
)


def _encode_query(res: Any) -> dict[str, Any]:
    from olmoctl.backends.ssh import encode_query

    return encode_query(res)


def hello() -> dict[str, Any]:
    from olmoctl import __version__
    from olmoctl.backends.ssh import PROTOCOL

    return {
        "olmoctl": __version__,
        "protocol": PROTOCOL,
        "home": os.path.expanduser("~"),
        "host": socket.gethostname(),
        "python": sys.executable,
    }


def handle(request: dict[str, Any], ops: _Ops | None = None) -> dict[str, Any]:
    """One request -> its answer. A version other than ours is refused before any op runs."""
    from olmoctl import __version__
    from olmoctl.backends.ssh import PROTOCOL, version_mismatch
    from olmoctl.errors import OlmoctlError

    rid = request.get("id")
    theirs = request.get("olmoctl")
    if theirs != __version__:
        msg = version_mismatch(str(theirs), __version__, socket.gethostname())
        return {"id": rid, "fatal": msg, "exit_code": 2}
    if request.get("protocol", PROTOCOL) != PROTOCOL:
        msg = f"protocol {request.get('protocol')} asked, this olmoctl speaks {PROTOCOL}"
        return {"id": rid, "fatal": msg, "exit_code": 2}
    ops = ops or _Ops()
    stop = bool(request.get("stop_on_error", True))
    results: list[dict[str, Any]] = []
    failed = False
    for item in request.get("ops") or []:
        if failed and stop:
            results.append({"skipped": True})
            continue
        args = dict(item)
        name = str(args.pop("op", ""))
        try:
            if name not in OPS:
                raise OlmoctlError(f"unknown remote op {name!r}")
            results.append({"ok": getattr(ops, name)(**args)})
        except OlmoctlError as e:
            failed = True
            results.append({"error": str(e), "exit_code": e.exit_code})
        except TypeError as e:
            failed = True
            results.append({"error": f"bad arguments for {name}: {e}", "exit_code": 2})
        except Exception as e:  # one line back to the caller, not a traceback
            failed = True
            results.append({"error": f"{type(e).__name__}: {e}", "exit_code": 1})
    return {"id": rid, "results": results}


@app.command("serve")
def serve() -> None:
    """Answer requests, one JSON line each, until stdin ends."""
    from olmoctl.backends.ssh import frame

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else prints goes to stderr: the answer stream stays clean
    sys.stdout = sys.stderr
    out.write(frame({"hello": hello()}))
    out.flush()
    ops = _Ops()
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            answer = handle(request, ops)
        except ValueError as e:
            answer = {"id": None, "fatal": f"bad request: {e}", "exit_code": 2}
        out.write(frame(answer))
        out.flush()


@app.command("call")
def call() -> None:
    """Answer one request read from stdin (plain JSON out)."""
    try:
        request = json.loads(sys.stdin.read())
    except ValueError as e:
        typer.echo(json.dumps({"id": None, "fatal": f"bad request: {e}", "exit_code": 2}))
        raise typer.Exit(2) from None
    typer.echo(json.dumps(handle(request)))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="_remote", hidden=True)
