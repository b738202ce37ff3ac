"""The login node's half of a remote (ssh) cluster: `olmoctl _remote serve` answers the JSON
requests of a local SSHBackend (wire format: backends/ssh_protocol.py, docs/remote.md) by
running the ordinary Slurm backend and plain file I/O (backends/files.py) here. Nothing here
touches a state store.

`OPS` is the one table of what a request may ask: op name -> handler and its arguments;
requests are checked against it and dispatched through it, and `_remote ops` lists it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from olmoctl.backends import prefetch as pf
from olmoctl.backends.files import LOCAL, RunFiles, owner_writes
from olmoctl.backends.ssh_protocol import (
    PROTOCOL,
    decode_jobs,
    decode_query,
    encode_bytes,
    encode_jobs,
    encode_query,
    frame,
    version_mismatch,
)
from olmoctl.errors import OlmoctlError, shown
from olmoctl.fileread import Refused

_REQUIRED: Any = object()


@dataclass(frozen=True)
class Arg:
    """One argument of an op: its JSON types, and its default when it may be left out."""

    types: tuple[type, ...]
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


STR = Arg((str,))
LIST = Arg((list,))
OBJ = Arg((dict,))


@dataclass(frozen=True)
class Op:
    handler: Callable[..., Any]  # LoginNode method: (node, **args) -> JSON
    args: dict[str, Arg]
    doc: str

    def check(self, name: str, args: dict[str, Any]) -> None:
        """Raise TypeError (-> "bad arguments for NAME: ...") unless `args` fit."""
        unknown = sorted(set(args) - set(self.args))
        missing = sorted(
            a for a, s in self.args.items() if s.default is _REQUIRED and a not in args
        )
        wrong = sorted(a for a, v in args.items() if a in self.args and not _fits(v, self.args[a]))
        problems = [f"unexpected {', '.join(map(repr, unknown))}"] if unknown else []
        problems += [f"missing {', '.join(map(repr, missing))}"] if missing else []
        problems += [f"wrong type for {', '.join(map(repr, wrong))}"] if wrong else []
        if problems:
            raise TypeError("; ".join(problems))


def _fits(value: Any, arg: Arg) -> bool:
    if value is None and arg.default is None:
        return True
    return isinstance(value, arg.types)


class LoginNode:
    """The handlers: the Slurm backend (created on first use) and this machine's files."""

    def __init__(self, fs: RunFiles = LOCAL, slurm: Any = None) -> None:
        self.fs = fs
        self._slurm = slurm

    @property
    def slurm(self) -> Any:
        if self._slurm is None:
            from olmoctl.backends.slurm import SlurmBackend

            self._slurm = SlurmBackend()
        return self._slurm

    def run(self, name: str, args: dict[str, Any]) -> Any:
        """One op, checked against the table."""
        op = OPS.get(name)
        if op is None:
            raise OlmoctlError(f"unknown remote op {shown(name)}")
        op.check(name, args)
        given = {a: s.default for a, s in op.args.items() if not s.required}
        return op.handler(self, **{**given, **args})

    # scheduler
    def check_reachable(self, spec: dict[str, Any]) -> None:
        self.slurm.check_reachable(_spec(spec))

    def submit(
        self, spec: dict[str, Any], script: str, files: dict[str, list[Any]] | None, new_run: bool
    ) -> list[str]:
        """Submit; with `files`, write the run directory first and remove it again if this
        call created it and the submission fails."""
        run = _spec(spec)
        with owner_writes():  # as a local launch: no one else may write what the job loads
            created = False
            if files is not None:
                created = self.write_run_dir(run.run_dir, files, new_run)
            try:
                job_id, submitted = self.slurm.submit(run, script)
            except BaseException:
                if created:
                    self.fs.remove_run_dir(run.run_dir)
                raise
        return [job_id, submitted]

    def query(self, job_ids: list[str]) -> dict[str, Any]:
        return encode_query(self.slurm.query(dict.fromkeys(job_ids, "")))  # run dirs: unused

    def queued(self, job_ids: list[str]) -> dict[str, Any]:
        return encode_jobs(self.slurm.queued(job_ids))

    def node_states(self, nodes: str) -> dict[str, list[str]]:
        return {n: list(v) for n, v in self.slurm.node_states(nodes).items()}

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        return bool(self.slurm.exclude_pending(job_id, nodes))

    def cancel(self, job_id: str) -> None:
        self.slurm.cancel(job_id, "")  # Slurm needs no run dir

    def request_save(self, job_id: str) -> None:
        self.slurm.request_save(job_id, "")

    # files
    def write_run_dir(self, run_dir: str, files: dict[str, list[Any]], new_run: bool) -> bool:
        wire = {rel: (str(text), int(mode)) for rel, (text, mode) in files.items()}
        return self.fs.write_run_dir(run_dir, wire, new_run=new_run)

    def remove_run_dir(self, run_dir: str) -> None:
        from pathlib import Path

        root = Path(run_dir)
        if root.exists() and not (root / "spec.json").exists() and any(root.iterdir()):
            raise OlmoctlError(f"{run_dir} is not a run directory; not removing it")
        self.fs.remove_run_dir(run_dir)

    def read_tail(self, path: str, nbytes: int | None) -> dict[str, str]:
        try:
            return encode_bytes(self.fs.read_tail(path, nbytes))
        except Refused as e:  # an answer, not an error: the other reads go on
            return encode_bytes(e)

    def read_many(self, items: list[list[Any]]) -> list[dict[str, str]]:
        return [encode_bytes(b) for b in self.fs.read_many([(str(p), int(o)) for p, o in items])]

    def untrusted(self, run_dir: str) -> str | None:
        return self.fs.untrusted(run_dir)

    def glob(self, folder: str, pattern: str) -> list[str]:
        return self.fs.glob(folder, pattern)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def checkpoints(self, run_dir: str) -> list[list[Any]]:
        return [list(c) for c in self.fs.checkpoints(run_dir)]

    def free_space(self, path: str) -> int | None:
        return self.fs.free_bytes(path)

    # everything one `status` reads, in one answer
    def prefetch(self, want: dict[str, Any]) -> list[list[Any]]:
        """[op, args, answer] for each call the Prefetch `want` declares (backends/prefetch.py),
        in its order; the rules it carries pick the calls that depend on this sacct."""
        p = pf.Prefetch.from_wire(want)
        out: list[list[Any]] = []

        def ask(call: pf.Call) -> Any:
            answer = self.run(call.op, dict(call.args))
            out.append([call.op, call.args, answer])
            return answer

        history: dict[str, list[Any]] = {}
        if p.job_ids:
            res = decode_query(ask(pf.query(p.job_ids)))
            history = res.history
            maybe = pf.controller_asks(p.job_ids, res, p.maybe_requeued, p.live_states)
            queued = decode_jobs(ask(pf.queued(maybe))) if maybe else {}
            rule = (p.maybe_requeued, p.live_states)
            history = {
                j: pf.incarnations(history.get(j) or [], queued.get(j), *rule) for j in p.job_ids
            }
        for a in p.attempts:
            ended = [r for r in history.get(a.job_id) or [] if r.state not in p.live_states]
            if a.job_id in p.job_ids and not ended:
                continue  # still running: nothing to classify
            ranks = ask(a.ranks)
            ask(a.batch)
            if any(r.state not in p.batch_log_suffices for r in ended):
                for path in ranks:
                    ask(pf.read_tail(path, a.nbytes))
            for r in ended:
                if r.state in p.node_states_after and r.node_list:
                    ask(pf.node_states(r.node_list))
        for call in p.reads:
            ask(call)
        return out


def _spec(data: dict[str, Any]) -> Any:
    from olmoctl.schemas import RunSpec

    return RunSpec.model_validate(data)


_NBYTES = Arg((int,), None)  # None: the whole file
OPS: dict[str, Op] = {
    "check_reachable": Op(LoginNode.check_reachable, {"spec": OBJ}, "Slurm answers here"),
    "submit": Op(
        LoginNode.submit,
        {"spec": OBJ, "script": STR, "files": Arg((dict,), None), "new_run": Arg((bool,), False)},
        "write the run directory (files) and sbatch the script; undo the directory on failure",
    ),
    "query": Op(LoginNode.query, {"job_ids": LIST}, "one sacct (squeue without accounting)"),
    "queued": Op(LoginNode.queued, {"job_ids": LIST}, "squeue of these jobs"),
    "node_states": Op(LoginNode.node_states, {"nodes": STR}, "scontrol state of nodes"),
    "exclude_pending": Op(
        LoginNode.exclude_pending, {"job_id": STR, "nodes": LIST}, "steer a pending job"
    ),
    "cancel": Op(LoginNode.cancel, {"job_id": STR}, "scancel"),
    "request_save": Op(LoginNode.request_save, {"job_id": STR}, "save and requeue (USR2)"),
    "write_run_dir": Op(
        LoginNode.write_run_dir,
        {"run_dir": STR, "files": OBJ, "new_run": Arg((bool,))},
        "write a run directory's files",
    ),
    "remove_run_dir": Op(LoginNode.remove_run_dir, {"run_dir": STR}, "remove a run directory"),
    "read_tail": Op(LoginNode.read_tail, {"path": STR, "nbytes": _NBYTES}, "end of a file"),
    "read_many": Op(LoginNode.read_many, {"items": LIST}, "bytes from offsets: [[path, n]]"),
    "glob": Op(LoginNode.glob, {"folder": STR, "pattern": STR}, "paths matching, sorted"),
    "exists": Op(LoginNode.exists, {"path": STR}, "whether a path exists"),
    "checkpoints": Op(LoginNode.checkpoints, {"run_dir": STR}, "[step, path, complete]"),
    "untrusted": Op(LoginNode.untrusted, {"run_dir": STR}, "why others could write a run dir"),
    "free_space": Op(LoginNode.free_space, {"path": STR}, "bytes free on path's filesystem"),
    "prefetch": Op(LoginNode.prefetch, {"want": OBJ}, "what one status reads, in one answer"),
}


def listing() -> list[str]:
    """One line per op: its name, arguments (? when optional) and what it does."""
    out = []
    for name, op in OPS.items():
        args = ", ".join(
            a + ("?" if s.default is not _REQUIRED else "") for a, s in op.args.items()
        )
        out.append(f"{name}({args}): {op.doc}")
    return out


def hello() -> dict[str, Any]:
    from olmoctl import __version__

    return {
        "olmoctl": __version__,
        "protocol": PROTOCOL,
        "home": os.path.expanduser("~"),
        "host": socket.gethostname(),
        "python": sys.executable,
    }


def handle(request: dict[str, Any], node: LoginNode | None = None) -> dict[str, Any]:
    """One request -> its answer. A version other than ours is refused before any op runs."""
    from olmoctl import __version__

    rid = request.get("id")
    theirs = request.get("olmoctl")
    if theirs != __version__:
        msg = version_mismatch(str(theirs), __version__, socket.gethostname())
        return {"id": rid, "fatal": msg, "exit_code": 2}
    if request.get("protocol", PROTOCOL) != PROTOCOL:
        msg = f"protocol {request.get('protocol')} asked, this olmoctl speaks {PROTOCOL}"
        return {"id": rid, "fatal": msg, "exit_code": 2}
    node = node or LoginNode()
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
            results.append({"ok": node.run(name, args)})
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


def serve(stdin: IO[bytes]) -> None:
    """Answer requests, one JSON line each, until `stdin` ends. The answers go to the real
    stdout; whatever else prints (a library) goes to stderr, so the stream stays clean."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out.write(frame({"hello": hello()}))
    out.flush()
    node = LoginNode()
    for line in stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line), node)
        except ValueError as e:
            answer = {"id": None, "fatal": f"bad request: {e}", "exit_code": 2}
        out.write(frame(answer))
        out.flush()


def call(text: str) -> tuple[dict[str, Any], int]:
    """One unframed request -> (its answer, exit status)."""
    try:
        request = json.loads(text)
    except ValueError as e:
        return {"id": None, "fatal": f"bad request: {e}", "exit_code": 2}, 2
    return handle(request), 0
