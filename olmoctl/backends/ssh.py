"""A remote cluster over SSH: one fabric Connection per olmoctl command (ssh_link.py), and
on it one remote olmoctl (`REMOTE_OLMOCTL _remote serve`, ssh_serve.py) that answers JSON
requests (ssh_protocol.py) by running the ordinary Slurm backend and plain file reads on the
login node. `status` declares what it will read (a backends.prefetch.Prefetch); that comes
in one request, and the later calls for the same things are answered from it.

fabric and paramiko are imported only when a connection is opened (startup stays light).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from olmoctl.backends import jobfiles
from olmoctl.backends import prefetch as pf
from olmoctl.backends.base import JobInfo, NotSupported, QueryResult
from olmoctl.backends.ssh_link import Link, link_for
from olmoctl.backends.ssh_protocol import (
    CACHE_TTL_S,
    decode_bytes,
    decode_jobs,
    decode_query,
    decode_read,
)
from olmoctl.errors import OlmoctlError, UsageError, flat, shown
from olmoctl.fileread import Refused
from olmoctl.schemas import RunSpec
from olmoctl.schemas.cluster import SSHConfig

__all__ = ["RemoteFiles", "SSHBackend", "backend_for_ssh", "remote_home"]

_BACKENDS: dict[str, SSHBackend] = {}  # this command's backends, one per SSH config


def backend_for_ssh(ssh: SSHConfig) -> SSHBackend:
    """This command's backend for a login node: one per SSH config, one connection each."""
    key = ssh.model_dump_json()
    if key not in _BACKENDS:
        _BACKENDS[key] = SSHBackend(ssh, link_for(ssh))
    return _BACKENDS[key]


def remote_home(ssh: SSHConfig) -> str:
    """The login node's home directory (to resolve `~` in a remote cluster's paths)."""
    return str(backend_for_ssh(ssh).hello()["home"])


# -- the backend ----------------------------------------------------------------------------
class SSHBackend(jobfiles.SlurmJobLogs):
    """The Backend protocol plus run-directory files (`files`), all on the login node."""

    supports_arrays = False  # the array flow writes pickles and sbatches here, not remotely
    batch_script = True  # the login node submits through Slurm

    def __init__(self, ssh: SSHConfig, link: Link) -> None:
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
            _raise_error(r)
            out.append(r.get("ok"))
        return out

    def call1(self, op: str, **args: Any) -> Any:
        return self.call([{"op": op, **args}])[0]

    def _ask(self, call: pf.Call) -> Any:
        """`call`'s answer: prefetched (filed under the same call), else one round trip."""
        hit = self._cache.get(call.key())
        if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
            return hit[1]
        return self.call([call.to_wire()])[0]

    def forget(self) -> None:
        self._cache.clear()
        self._pending.clear()

    # Backend protocol
    def job_command(self, spec: RunSpec) -> str:
        return jobfiles.submitit_command(spec)

    def check_reachable(self, spec: RunSpec) -> None:
        if spec.cluster.scheduler != "slurm":
            raise UsageError(
                f"cluster {shown(spec.cluster.name)}: a remote (ssh) cluster must use "
                "scheduler: slurm"
            )
        # The run directory's free space comes in the same round trip: launch warns when it
        # cannot hold the checkpoints (core/launch/checks.py asks files.free_bytes next).
        free = pf.free_space(spec.run_dir)
        ops = [{"op": "check_reachable", "spec": spec.model_dump(mode="json")}, free.to_wire()]
        reachable, space = self.link.open().request(ops, False)
        _raise_error(reachable)
        if "ok" in space:  # an error here only costs the warning
            self._cache[free.key()] = (time.monotonic(), space["ok"])

    def submit(self, spec: RunSpec, script: str) -> tuple[str, str]:
        """Write the run directory (files.write_run_dir, held until now) and submit, in one
        round trip; the remote side removes a directory it created if sbatch fails."""
        write = self._pending.pop(spec.run_dir, {})
        self.forget()
        job_id, submitted = self.call1(
            "submit", spec=spec.model_dump(mode="json"), script=script, **write
        )
        return str(job_id), str(submitted)

    def prefetch(self, want: pf.Prefetch) -> None:
        """ONE round trip for what `status` reads (`want`); each answer is filed under the
        call it answers, and the later ordinary calls for the same things are served from it."""
        (answer,) = self.call([{"op": "prefetch", "want": want.to_wire()}])
        now = time.monotonic()
        self._cache = {pf.Call(op, args).key(): (now, value) for op, args, value in answer}

    def query(self, jobs: Mapping[str, str]) -> QueryResult:
        return decode_query(self._ask(pf.query(list(jobs))))

    def queued(self, job_ids: list[str]) -> dict[str, JobInfo]:
        return decode_jobs(self._ask(pf.queued(job_ids))) if job_ids else {}

    def node_states(self, nodes: str) -> dict[str, tuple[str, str]]:
        return {n: (s, r) for n, (s, r) in self._ask(pf.node_states(nodes)).items()}

    def exclude_pending(self, job_id: str, nodes: list[str]) -> bool:
        self.forget()
        return bool(self.call1("exclude_pending", job_id=job_id, nodes=nodes))

    def cancel(self, job_id: str, run_dir: str) -> None:
        self.forget()
        self.call1("cancel", job_id=job_id)

    def submit_script(self, spec: RunSpec, script_path: str) -> str:
        raise NotSupported("olmoctl doctor runs on the cluster's login node, not over ssh")

    def request_save(self, job_id: str, run_dir: str) -> None:
        self.forget()
        self.call1("request_save", job_id=job_id)

    def submit_array(self, script_path: str) -> str:
        raise NotSupported("job arrays are not supported on a remote (ssh) cluster")

    def submit_array_task(
        self, spec: RunSpec, script: str, array_id: str, index: int
    ) -> tuple[str, str]:
        raise NotSupported("job arrays are not supported on a remote (ssh) cluster")

    def release_array(self, array_id: str) -> None:
        raise NotSupported("job arrays are not supported on a remote (ssh) cluster")

    def cancel_array(self, array_id: str) -> None:
        return None  # there are none to cancel


def _raise_error(result: dict[str, Any]) -> None:
    """One op's result that is an error, raised as the one-line error the remote side said."""
    if "error" in result:
        cls = UsageError if result.get("exit_code") == 2 else OlmoctlError
        raise cls(str(result["error"]))


class RemoteFiles:
    """backends.files.RunFiles on the login node's filesystem."""

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
        return decode_bytes(self.b._ask(pf.read_tail(path, nbytes)))

    def read_from(self, path: str, offset: int) -> bytes:
        got = self.read_many([(str(path), offset)])[0]
        if isinstance(got, Refused):
            raise got
        return got

    def read_many(self, items: list[tuple[str, int]]) -> list[bytes | Refused]:
        if not items:
            return []
        got = self.b.call1("read_many", items=[[str(p), int(o)] for p, o in items])
        return [decode_read(v) for v in got]

    def glob(self, folder: str, pattern: str) -> list[str]:
        return list(self.b._ask(pf.glob(folder, pattern)))

    def exists(self, path: str) -> bool:
        return bool(self.b.call1("exists", path=str(path)))

    def checkpoints(self, run_dir: str) -> list[tuple[int, str, bool]]:
        got = self.b._ask(pf.checkpoints(run_dir))
        return [(int(s), str(p), bool(c)) for s, p, c in got]

    def untrusted(self, run_dir: str) -> str | None:
        got = self.b.call1("untrusted", run_dir=str(run_dir))
        return None if got is None else flat(str(got), 600)

    def free_bytes(self, path: str) -> int | None:
        """Asked with check_reachable (launch: no round trip of its own), else one trip."""
        try:
            got = self.b._ask(pf.free_space(path))
        except OlmoctlError:  # a warning's input: never a reason to fail
            return None
        return int(got) if isinstance(got, int) else None
