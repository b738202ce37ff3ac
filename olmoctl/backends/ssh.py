"""A remote cluster over SSH: one fabric Connection per olmoctl command, and on it one
remote olmoctl (`REMOTE_OLMOCTL _remote serve`) that answers JSON requests by running the
ordinary Slurm backend and plain file reads on the login node.

Wire format (one JSON document per line, both ways):
  remote -> local, first:  @olmoctl-remote {"hello": {"olmoctl": VERSION, "protocol": 1,
                                                      "home": ..., "host": ...}}
  local -> remote:          {"protocol": 1, "olmoctl": VERSION, "id": N,
                             "ops": [{"op": NAME, ...args}, ...], "stop_on_error": BOOL}
  remote -> local:          @olmoctl-remote {"id": N, "results": [{"ok": VALUE} |
                             {"error": MESSAGE, "exit_code": 1|2} | {"skipped": true}, ...]}
                            or {"id": N, "fatal": MESSAGE, "exit_code": 2} (version mismatch)
Bytes travel as {"z": base64(zlib(data))}. Lines without the marker (a login banner, a
library's print) are ignored but kept for error messages. Several ops ride one request: the
`status` op does the single sacct for every unfinished job and returns, in the same answer,
what status will read next (events tails, checkpoints, and the logs of jobs that ended).

fabric and paramiko are imported only when a connection is opened (startup stays light).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import time
import zlib
from collections import deque
from typing import Any

from olmoctl.backends.base import JobInfo, QueryResult
from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.schemas import RunSpec
from olmoctl.schemas.cluster import SSHConfig

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
def _label(ssh: SSHConfig) -> str:
    return f"{ssh.user + '@' if ssh.user else ''}{ssh.host}:{ssh.port}"


def _known_hosts(ssh: SSHConfig) -> str:
    return os.path.expanduser(ssh.known_hosts or "~/.ssh/known_hosts")


class _Server:
    """The remote olmoctl on one session channel: requests in, framed answers out."""

    def __init__(self, chan: Any, ssh: SSHConfig) -> None:
        self.chan = chan
        self.ssh = ssh
        self.stdin = chan.makefile_stdin("wb")
        self.stdout = chan.makefile("rb")
        self.noise: deque[str] = deque(maxlen=20)
        self.next_id = 0
        self.round_trips = 0
        self.bytes_in = 0
        self.hello: dict[str, Any] = {}

    def _read(self, timeout: float) -> dict[str, Any]:

        self.chan.settimeout(timeout)
        while True:
            try:
                line = self.stdout.readline()
            except TimeoutError:
                raise OlmoctlError(
                    f"remote olmoctl on {self.ssh.host} did not answer within {timeout:.0f} s"
                ) from None
            if not line:
                raise self._died()
            self.bytes_in += len(line)
            text = line.decode(errors="replace").rstrip("\r\n")
            if text.startswith(MARKER):
                return json.loads(text[len(MARKER) :])
            if text.strip():
                self.noise.append(text.strip())

    def _died(self) -> OlmoctlError:
        for _ in range(20):  # the exit status follows the end of output closely
            if self.chan.exit_status_ready():
                break
            time.sleep(0.1)
        status = self.chan.recv_exit_status() if self.chan.exit_status_ready() else None
        why = self.noise[-1] if self.noise else "no output"
        code = f" (exit {status})" if status is not None else ""
        return UsageError(
            f"remote olmoctl on {self.ssh.host} stopped{code}: {why} "
            f"[remote_olmoctl: {self.ssh.remote_olmoctl}]"
        )

    def start(self) -> None:
        from olmoctl import __version__

        msg = self._read(HELLO_TIMEOUT_S)
        hello = msg.get("hello") or {}
        if hello.get("olmoctl") != __version__:
            raise UsageError(
                version_mismatch(__version__, str(hello.get("olmoctl")), self.ssh.host)
            )
        if hello.get("protocol") != PROTOCOL:
            raise UsageError(
                f"remote olmoctl on {self.ssh.host} speaks protocol {hello.get('protocol')}, "
                f"this one {PROTOCOL}"
            )
        self.hello = hello

    def request(self, ops: list[dict[str, Any]], stop_on_error: bool) -> list[dict[str, Any]]:
        from olmoctl import __version__

        self.next_id += 1
        req = {
            "protocol": PROTOCOL,
            "olmoctl": __version__,
            "id": self.next_id,
            "ops": ops,
            "stop_on_error": stop_on_error,
        }
        try:
            self.stdin.write((json.dumps(req) + "\n").encode())
            self.stdin.flush()
        except OSError as e:
            raise OlmoctlError(f"lost the connection to {self.ssh.host}: {e}") from None
        self.round_trips += 1
        while True:
            msg = self._read(REQUEST_TIMEOUT_S)
            if msg.get("id") == self.next_id:
                break
        if "fatal" in msg:
            cls = UsageError if msg.get("exit_code") == 2 else OlmoctlError
            raise cls(str(msg["fatal"]))
        return list(msg["results"])

    def close(self) -> None:
        for f in (self.stdin, self.stdout, self.chan):  # a dead channel: nothing left to do
            with contextlib.suppress(Exception):
                f.close()


class _Link:
    """One SSH connection and the remote olmoctl serving on it."""

    def __init__(self, ssh: SSHConfig) -> None:
        self.ssh = ssh
        self.conn: Any = None
        self.server: _Server | None = None
        self.failed: OlmoctlError | None = None  # tried once in this command: not again

    def open(self) -> _Server:
        if self.server is not None:
            return self.server
        if self.failed is not None:
            raise self.failed
        try:
            self.conn = _connect(self.ssh)
            try:
                chan = self.conn.create_session()
                chan.set_combine_stderr(True)
                chan.exec_command(f"{self.ssh.remote_olmoctl} _remote serve")
            except Exception as e:
                where = _label(self.ssh)
                raise UsageError(f"cannot start remote olmoctl on {where}: {e}") from None
            server = _Server(chan, self.ssh)
            server.start()
        except OlmoctlError as e:
            self.failed = e
            self.close()
            raise
        self.server = server
        return server

    def close(self) -> None:
        if self.server is not None:
            if os.environ.get("OLMOCTL_SSH_TRACE"):  # what this command cost on the wire
                import sys

                print(
                    f"olmoctl: ssh {_label(self.ssh)}: 1 connection, "
                    f"{self.server.round_trips} requests, {self.server.bytes_in} bytes in",
                    file=sys.stderr,
                )
            self.server.close()
            self.server = None
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def _connect(ssh: SSHConfig) -> Any:
    """A fabric Connection whose host key was verified against known_hosts (never added)."""

    import paramiko
    from fabric import Config, Connection

    where = _label(ssh)
    known = _known_hosts(ssh)
    kwargs: dict[str, Any] = {
        "allow_agent": True,
        "banner_timeout": CONNECT_TIMEOUT_S,
        "auth_timeout": CONNECT_TIMEOUT_S,
    }
    if ssh.identity_file:
        key = os.path.expanduser(ssh.identity_file)
        if not os.path.isfile(key):
            raise UsageError(f"ssh identity_file {ssh.identity_file!r} does not exist")
        kwargs.update(key_filename=[key], look_for_keys=False)
    conn = Connection(
        ssh.host,
        user=ssh.user,
        port=ssh.port,
        connect_timeout=CONNECT_TIMEOUT_S,
        connect_kwargs=kwargs,
        config=Config(overrides={"run": {"in_stream": False}}),
    )
    client = conn.client
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if ssh.known_hosts:
        try:
            client.load_system_host_keys(known)
        except OSError as e:
            raise UsageError(f"ssh known_hosts {ssh.known_hosts!r}: {e.strerror or e}") from None
    else:
        client.load_system_host_keys()
    try:
        conn.open()
    except paramiko.BadHostKeyException:
        raise UsageError(
            f"host key of {ssh.host} (port {ssh.port}) does not match {known}: refusing to "
            "connect (if the key really changed, remove the old one: ssh-keygen -R HOST)"
        ) from None
    except paramiko.AuthenticationException as e:
        raise UsageError(
            f"ssh {where}: authentication failed ({e}); use a key or the agent"
        ) from None
    except paramiko.SSHException as e:
        if "not found in known_hosts" in str(e):
            raise UsageError(
                f"host key of {ssh.host} (port {ssh.port}) is not in {known}: refusing to "
                "connect (check its fingerprint, then add it to known_hosts)"
            ) from None
        raise UsageError(f"ssh {where}: {str(e).strip() or type(e).__name__}") from None
    except (OSError, EOFError) as e:
        why = _reason(e)
        raise UsageError(f"cannot connect to {where}: {why}") from None
    return conn


def _reason(e: BaseException) -> str:
    errors = getattr(e, "errors", None)  # paramiko's NoValidConnectionsError: per address
    if isinstance(errors, dict) and errors:
        e = next(iter(errors.values()))
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text.strip().splitlines()[0].lower() if text else "failed"


_LINKS: dict[str, _Link] = {}
_BACKENDS: dict[str, SSHBackend] = {}


def _close_all() -> None:
    for link in list(_LINKS.values()):
        link.close()
    _LINKS.clear()
    _BACKENDS.clear()


atexit.register(_close_all)


def backend_for_ssh(ssh: SSHConfig) -> SSHBackend:
    """This command's backend for a login node: one per SSH config, one connection each."""
    key = ssh.model_dump_json()
    if key not in _BACKENDS:
        conn_key = json.dumps(
            [ssh.user, ssh.host, ssh.port, ssh.identity_file, ssh.known_hosts, ssh.remote_olmoctl]
        )
        link = _LINKS.setdefault(conn_key, _Link(ssh))
        _BACKENDS[key] = SSHBackend(ssh, link)
    return _BACKENDS[key]


def remote_home(ssh: SSHConfig) -> str:
    """The login node's home directory (to resolve `~` in a remote cluster's paths)."""
    return str(backend_for_ssh(ssh).hello()["home"])


# -- the backend ----------------------------------------------------------------------------
class SSHBackend:
    """The Backend protocol plus run-directory files (`files`), all on the login node."""

    def __init__(self, ssh: SSHConfig, link: _Link) -> None:
        self.ssh = ssh
        self.link = link
        self.files = RemoteFiles(self)
        self._cache: dict[str, tuple[float, Any]] = {}
        # run dir -> files to write with that run's next submission (one round trip)
        self._pending: dict[str, dict[str, Any]] = {}

    # transport
    def hello(self) -> dict[str, Any]:
        return self.link.open().hello

    @property
    def round_trips(self) -> int:
        return self.link.server.round_trips if self.link.server else 0

    def call(self, ops: list[dict[str, Any]], *, stop_on_error: bool = True) -> list[Any]:
        """Run `ops` on the remote side in ONE round trip; the first error is raised."""
        results = self.link.open().request(ops, stop_on_error)
        out = []
        for r in results:
            if "error" in r:
                cls = UsageError if r.get("exit_code") == 2 else OlmoctlError
                raise cls(str(r["error"]))
            out.append(r.get("ok"))
        return out

    def call1(self, op: str, **args: Any) -> Any:
        return self.call([{"op": op, **args}])[0]

    def _cached(self, op: str, args: dict[str, Any]) -> tuple[bool, Any]:
        hit = self._cache.get(cache_key(op, args))
        if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
            return True, hit[1]
        return False, None

    def _ask(self, op: str, **args: Any) -> Any:
        found, value = self._cached(op, args)
        return value if found else self.call1(op, **args)

    def forget(self) -> None:
        self._cache.clear()
        self._pending.clear()

    # Backend protocol
    def check_reachable(self, spec: RunSpec) -> None:
        if spec.cluster.scheduler != "slurm":
            raise UsageError(
                f"cluster {spec.cluster.name!r}: a remote (ssh) cluster must use scheduler: slurm"
            )
        self.call1("check_reachable", spec=spec.model_dump(mode="json"))

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        """Write the run directory (files.write_run_dir, held until now) and submit, in one
        round trip; the remote side removes a directory it created if sbatch fails."""
        write = self._pending.pop(spec.run_dir, {})
        self.forget()
        job_id, submitted = self.call1(
            "submit", spec=spec.model_dump(mode="json"), script=script, **write
        )
        return str(job_id), str(submitted)

    def prefetch(self, job_ids: list[str], job_dirs: dict[str, str], run_dirs: list[str]) -> None:
        """ONE round trip for what `status` needs: the sacct for every job (squeue for those
        that may have been requeued), the events tail and checkpoints of each run, the logs of
        jobs that ended; later calls for the same things are answered from it."""
        (answer,) = self.call(
            [{"op": "status", "job_ids": job_ids, "job_dirs": job_dirs, "run_dirs": run_dirs}]
        )
        now = time.monotonic()
        self._cache = {cache_key(op, args): (now, value) for op, args, value in answer}

    def query(self, job_ids: list[str]) -> QueryResult:
        return decode_query(self._ask("query", job_ids=list(job_ids)))

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        return decode_jobs(self._ask("queued", job_ids=list(job_ids))) if job_ids else {}

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        return {n: (s, r) for n, (s, r) in self._ask("node_states", nodes=nodes).items()}

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        self.forget()
        return bool(self.call1("exclude_pending", job_id=job_id, nodes=nodes))

    def cancel(self, job_id: str) -> None:
        self.forget()
        self.call1("cancel", job_id=job_id)


class RemoteFiles:
    """core.runfiles.RunFiles on the login node's filesystem."""

    remote = True

    def __init__(self, backend: SSHBackend) -> None:
        self.b = backend

    def write_run_dir(
        self, run_dir: str, files: dict[str, tuple[str, int]], *, new_run: bool
    ) -> bool:
        """Held and sent with the run's submission (SSHBackend.submit): one round trip, and
        nothing is written for a submission that never happens. False: nothing to undo here."""
        wire = {rel: [text, mode] for rel, (text, mode) in files.items()}
        self.b._pending[run_dir] = {"files": wire, "new_run": new_run}
        return False

    def remove_run_dir(self, run_dir: str) -> None:
        self.b.forget()
        self.b.call1("remove_run_dir", run_dir=run_dir)

    def read_tail(self, path: str, nbytes: int | None) -> bytes:
        return decode_bytes(self.b._ask("read_tail", path=str(path), nbytes=nbytes))

    def read_from(self, path: str, offset: int) -> bytes:
        return self.read_many([(str(path), offset)])[0]

    def read_many(self, items: list[tuple[str, int]]) -> list[bytes]:
        if not items:
            return []
        got = self.b.call1("read_many", items=[[str(p), int(o)] for p, o in items])
        return [decode_bytes(v) for v in got]

    def glob(self, folder: str, pattern: str) -> list[str]:
        return list(self.b._ask("glob", folder=str(folder), pattern=pattern))

    def exists(self, path: str) -> bool:
        return bool(self.b.call1("exists", path=str(path)))

    def checkpoints(self, run_dir: str) -> list[tuple[int, str, bool]]:
        got = self.b._ask("checkpoints", run_dir=str(run_dir))
        return [(int(s), str(p), bool(c)) for s, p, c in got]
