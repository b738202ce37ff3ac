"""Webhooks in hostile places (issue 26 item 9), against real local HTTP servers: a redirect is
never followed (to another scheme, host or path: the notice would go on as a GET, or to
ftp://), credentials in the URL go as HTTP basic auth and never in the request line or a
message, and --notify-url-file reads a bounded regular file only (a FIFO does not block)."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from olmoctl.core.supervise import notify
from olmoctl.errors import UsageError
from tests.sinks import Received

TOKEN = "T0000/B0000/XXXXsecretXXXX"
GUARD_S = 60.0  # hang guard only


def notice() -> notify.Notice:
    return notify.Notice(kind="failure", run="r1", text="attempt 1 ended: NODE_FAIL")


@contextmanager
def server(status: int = 200, location: str | None = None) -> Iterator[tuple[str, Received]]:
    """Yields (base URL, Received of (method, path, Authorization header)); answers every
    request with `status` (and a Location header when given)."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            got.add((self.command, self.path, self.headers.get("Authorization")), self.path)
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_GET = do_HEAD = _answer

        def log_message(self, *args: Any) -> None:
            return None

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", got
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", ["ftp", "file", "other-host", "same-host"])
def test_a_redirect_is_never_followed(code: int, target: str) -> None:
    with server() as (other, other_got):
        location = {
            "ftp": f"ftp://127.0.0.1:{other.rsplit(':', 1)[1]}/x",
            "file": "file:///etc/passwd",
            "other-host": f"{other}/elsewhere",
            "same-host": "/elsewhere",
        }[target]
        with server(code, location) as (base, got):
            logged: list[str] = []
            n = notify.Notifier(f"{base}/hook/{TOKEN}", "json", log=logged.append)
            n(notice())
            items = got.wait_for(lambda i: len(i) >= 1, GUARD_S, "the POST")
        # urllib's default handler re-sent a 301/302/303 as a GET (to ftp:// too).
        assert items == [("POST", f"/hook/{TOKEN}", None)]
        assert other_got.items == []
    assert n.failed == 1 and n.sent == 0 and len(logged) == 1
    assert f"HTTP {code}" in logged[0] and "not followed" in logged[0], logged[0]
    assert TOKEN not in logged[0] and "/hook" not in logged[0]


def test_credentials_in_the_url_go_as_basic_auth() -> None:
    with server() as (base, got):
        host = base.removeprefix("http://")
        logged: list[str] = []
        url = f"http://alice:s%40cret-pw@{host}/hook/{TOKEN}"
        n = notify.Notifier(url, "json", log=logged.append)
        assert "alice" not in n.describe() and "cret" not in n.describe()
        n(notice())
        items = got.wait_for(lambda i: len(i) == 1, GUARD_S, "one POST")
    auth = "Basic " + base64.b64encode(b"alice:s@cret-pw").decode()
    assert items == [("POST", f"/hook/{TOKEN}", auth)] and logged == [] and n.sent == 1


def test_credentials_never_reach_a_failure_message() -> None:
    with server(500) as (base, _got):
        host = base.removeprefix("http://")
        logged: list[str] = []
        notify.Notifier(f"http://bob:hunter2-pw@{host}/h/{TOKEN}", log=logged.append)(notice())
    assert len(logged) == 1 and "HTTP 500" in logged[0]
    assert "hunter2" not in logged[0] and "bob" not in logged[0] and TOKEN not in logged[0]


def test_a_url_without_credentials_sends_no_authorization() -> None:
    with server() as (base, got):
        notify.Notifier(f"{base}/hook", "json")(notice())
        items = got.wait_for(lambda i: len(i) == 1, GUARD_S, "one POST")
    assert items == [("POST", "/hook", None)]


def test_a_user_name_basic_auth_cannot_carry_is_refused() -> None:
    with pytest.raises(UsageError, match="holds a ':'") as e:
        notify.check_url("https://a%3Ab:pw@example.org/x", "--notify")
    assert "pw" not in str(e.value)


def _secret_file(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def test_the_url_file_is_bounded(tmp_path: Path) -> None:
    url = f"https://hooks.slack.com/services/{TOKEN}"
    ok = _secret_file(tmp_path / "ok", "# a comment\n" + url + "\n")
    assert notify.read_url_file(ok) == url
    limit = notify.URL_FILE_MAX
    big = _secret_file(tmp_path / "big", url + "\n" + "#" * limit)
    with pytest.raises(UsageError, match="larger than 8 KiB") as e:
        notify.read_url_file(big)
    assert TOKEN not in str(e.value)
    edge = _secret_file(tmp_path / "edge", url + "\n" + "#" * (limit - len(url) - 1))
    assert os.path.getsize(edge) == limit and notify.read_url_file(edge) == url
    binary = tmp_path / "bin"
    binary.write_bytes(b"https://x.org/\xff\n")
    binary.chmod(0o600)
    with pytest.raises(UsageError, match="not UTF-8"):
        notify.read_url_file(str(binary))


def test_a_fifo_or_device_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO swapped in for the file after a look at its path (here: os.stat says regular
    file, as it did a moment before): opening it for reading blocked for ever (no writer).
    Now what is checked is the opened file itself, opened non-blocking."""
    fifo = tmp_path / "hook"
    os.mkfifo(fifo, 0o600)
    regular = _secret_file(tmp_path / "regular", "https://x.org/\n")
    real_stat = os.stat

    def stale_stat(path: Any, *args: Any, **kw: Any) -> os.stat_result:
        return real_stat(regular if str(path) == str(fifo) else path, *args, **kw)

    monkeypatch.setattr(os, "stat", stale_stat)
    outcome: list[BaseException | str] = []

    def read() -> None:
        try:
            outcome.append(notify.read_url_file(str(fifo)))
        except BaseException as e:  # reported to the test thread
            outcome.append(e)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(GUARD_S)
    if t.is_alive():  # unblock the reader so the test run goes on, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("read_url_file blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], UsageError)
    assert "not a regular file" in str(outcome[0])
    with pytest.raises(UsageError, match="not a regular file"):
        notify.read_url_file("/dev/zero")  # would be read for ever without the bound


def test_watch_refuses_an_oversized_url_file_in_one_line(cli, tmp_path: Path) -> None:
    f = _secret_file(tmp_path / "hook", "https://x.org/hook\n" + "#" * notify.URL_FILE_MAX)
    res = cli("watch", "--once", "--notify-url-file", f)
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    assert "larger than 8 KiB" in res.err
