"""The SSH connection itself: one fabric Connection per login node per command (known_hosts
only, never auto-accepted), and on it one long-lived remote olmoctl answering requests.
fabric and paramiko are imported only when a connection is opened."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import time
from collections import deque
from typing import Any

from olmoctl.backends.ssh_protocol import (
    CONNECT_TIMEOUT_S,
    HELLO_TIMEOUT_S,
    MARKER,
    PROTOCOL,
    REQUEST_TIMEOUT_S,
    version_mismatch,
)
from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.schemas.cluster import SSHConfig


def _label(ssh: SSHConfig) -> str:
    return f"{ssh.user + '@' if ssh.user else ''}{ssh.host}:{ssh.port}"


def _known_hosts(ssh: SSHConfig) -> str:
    return os.path.expanduser(ssh.known_hosts or "~/.ssh/known_hosts")


class RemoteServer:
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


class Link:
    """One SSH connection and the remote olmoctl serving on it."""

    def __init__(self, ssh: SSHConfig) -> None:
        self.ssh = ssh
        self.conn: Any = None
        self.server: RemoteServer | None = None
        self.failed: OlmoctlError | None = None  # tried once in this command: not again

    def open(self) -> RemoteServer:
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
            server = RemoteServer(chan, self.ssh)
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


_LINKS: dict[str, Link] = {}  # this command's connections, one per login node


def link_for(ssh: SSHConfig) -> Link:
    """This command's one connection to the login node of `ssh` (opened on first use)."""
    key = json.dumps(
        [ssh.user, ssh.host, ssh.port, ssh.identity_file, ssh.known_hosts, ssh.remote_olmoctl]
    )
    return _LINKS.setdefault(key, Link(ssh))


def close_all() -> None:
    """Close every connection (at exit; a later call opens a new one)."""
    for link in list(_LINKS.values()):
        link.close()
    _LINKS.clear()


atexit.register(close_all)
