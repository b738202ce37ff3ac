"""Real receivers for `watch --notify` tests: an HTTP server (http.server in a thread) that
keeps every JSON body POSTed to it, and a minimal SMTP responder (a socket server speaking
just enough of RFC 5321 for smtplib) that keeps every message. Both on 127.0.0.1, port 0."""

from __future__ import annotations

import email
import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Received:
    """What a sink got, with a condition to wait on (no sleeps)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.paths: list[str] = []
        self.cond = threading.Condition()

    def add(self, item: Any, path: str = "") -> None:
        with self.cond:
            self.items.append(item)
            self.paths.append(path)
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[list[Any]], bool], timeout: float, what: str) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.items):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got {self.items!r}")
                self.cond.wait(left)
            return list(self.items)


@contextmanager
def http_sink(status: int = 200) -> Iterator[tuple[str, Received]]:
    """Yields (base URL, Received of decoded JSON bodies); answers `status` to every POST."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            try:
                got.add(json.loads(body), self.path)
            except ValueError:
                got.add({"_not_json": body.decode(errors="replace")}, self.path)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smtp_sink() -> Iterator[tuple[int, Received]]:
    """Yields (port, Received of email.message.Message): HELO/EHLO, MAIL, RCPT, DATA, QUIT."""
    got = Received()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")
            self.wfile.flush()

        def handle(self) -> None:
            self.reply("220 sink ESMTP")
            rcpts: list[str] = []
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                cmd = raw.decode(errors="replace").strip()
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250 sink")
                elif verb == "MAIL":
                    rcpts = []
                    self.reply("250 ok")
                elif verb == "RCPT":
                    rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                    self.reply("250 ok")
                elif verb == "DATA":
                    self.reply("354 end with .")
                    lines = []
                    while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                        lines.append(line[1:] if line.startswith(b"..") else line)
                    msg: Message = email.message_from_bytes(b"".join(lines))
                    msg["X-Sink-Rcpt"] = ",".join(rcpts)
                    got.add(msg)
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                elif verb in ("RSET", "NOOP"):
                    self.reply("250 ok")
                else:
                    self.reply("502 not implemented")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], got
    finally:
        server.shutdown()
        server.server_close()
