"""Notifications from `watch`: a webhook (Slack-compatible `{"text": ...}` or a generic JSON
POST with structured fields) and/or e-mail through an SMTP host from the environment.

Stdlib only (urllib, smtplib). Sending never raises: a failure is one line handed to the
`log` callback (stderr and the watch action log), with short timeouts, so supervision goes
on. A webhook URL is a secret (Slack's carries its token in the path): it is read from the
command line, `OLMOCTL_NOTIFY_URL` or a file only its owner can read (a regular file of at
most URL_FILE_MAX bytes), never stored, and every message that could name it shows
`redact(url)` instead. Credentials in it (https://user:pass@host/...) go as HTTP basic auth,
never in the request line; a redirect is never followed (the POST would go on as a GET, or
to another scheme or host: an answer that is not the hook's own is a failure, logged).
"""

from __future__ import annotations

import base64
import json
import os
import smtplib
import socket
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, NoReturn
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from olmoctl.errors import UsageError, shown, shown_plain

URL_ENV = "OLMOCTL_NOTIFY_URL"
TIMEOUT_S = 5.0  # per attempt to deliver: a dead endpoint must not stall supervision
URL_FILE_MAX = 8 * 1024  # --notify-url-file holds one URL (and comments)
FORMATS = ("auto", "slack", "json")
# The kinds watch sends (Notice.kind).
KINDS = (
    "failure",  # an attempt ended and was classified (class + evidence)
    "resume",  # a new attempt submitted (or Slurm's requeued job steered off bad nodes)
    "node_excluded",  # a node reached the exclusion threshold (or was excluded as a straggler)
    "hang",  # no progress for the profile's hang timeout: job cancelled
    "gave_up",  # the retry budget is spent
    "completed",
    "straggler",  # a node slower than --straggler-ratio for --straggler-intervals intervals
)


@dataclass(frozen=True)
class Notice:
    kind: str  # one of KINDS
    run: str | None
    text: str  # one line for people
    fields: dict[str, Any] = field(default_factory=dict)  # for machines (JSON format)
    ts: float = field(default_factory=time.time)


# -- the secret -----------------------------------------------------------------------------
def redact(url: str) -> str:
    """What may be shown of a webhook URL: scheme, host and port only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<webhook URL>"
    return f"{parts.scheme or '?'}://{host}{port}/…"


def check_url(url: str, where: str) -> str:
    """An http(s) URL with a host, else a one-line error that does not repeat it."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        ok = False
    if not ok or any(c.isspace() or ord(c) < 32 for c in url):
        raise UsageError(
            f"{where}: not an http(s) URL with a host (value not shown: it may hold a token); "
            "e.g. https://hooks.slack.com/services/..."
        )
    if ":" in unquote(urlsplit(url).username or ""):
        raise UsageError(
            f"{where}: the user name in the URL holds a ':' (value not shown); HTTP basic "
            "auth cannot carry it"
        )
    return url


def split_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without user:password@, the Authorization header they make, or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def read_url_file(path: str) -> str:
    """The URL in a regular file that only its owner may read (mode 0600 or stricter), of
    at most URL_FILE_MAX bytes. Opened before it is looked at (O_NONBLOCK: a FIFO or device
    put there does not block the open, and is refused by fstat), so what is checked is what
    is read."""
    where = f"--notify-url-file {shown_plain(path)}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise UsageError(f"{where}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{where}: not a regular file")
        if st.st_mode & 0o077:
            raise UsageError(
                f"{where}: readable or writable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"it holds a secret: chmod 600 {shown_plain(path)}"
            )
        try:
            data = f.read(URL_FILE_MAX + 1)
        except OSError as e:
            raise UsageError(f"{where}: unreadable: {e.strerror or e}") from None
    if len(data) > URL_FILE_MAX:
        raise UsageError(f"{where}: larger than {URL_FILE_MAX // 1024} KiB; it holds one URL")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{where}: not UTF-8 text (byte {e.start})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise UsageError(f"{where}: holds no URL")
    return check_url(lines[0], where)


def resolve_url(url: str | None, url_file: str | None, env: dict[str, str]) -> str | None:
    """--notify URL, else --notify-url-file, else $OLMOCTL_NOTIFY_URL, else None."""
    if url is not None and url_file is not None:
        raise UsageError("give --notify or --notify-url-file, not both")
    if url is not None:
        return check_url(url, "--notify")
    if url_file is not None:
        return read_url_file(url_file)
    if env.get(URL_ENV):
        return check_url(env[URL_ENV], URL_ENV)
    return None


def check_email(addr: str) -> str:
    """One address: local@domain, nothing that would add a header or a recipient."""
    local, at, domain = addr.partition("@")
    if not at or not local or "." not in domain or any(c in addr for c in ' ,;<>"\r\n\t'):
        raise UsageError(f"--notify-email {shown_plain(addr)}: not an address like user@host.org")
    return addr


# -- formats --------------------------------------------------------------------------------
def pick_format(url: str, fmt: str) -> str:
    """`auto`: Slack's format for Slack's (and Mattermost/Discord-style /slack) hooks, else
    the generic JSON."""
    if fmt != "auto":
        return fmt
    parts = urlsplit(url)
    host, path = (parts.hostname or "").lower(), parts.path.lower()
    return "slack" if host.endswith("slack.com") or path.rstrip("/").endswith("/slack") else "json"


def text_of(n: Notice) -> str:
    return f"olmoctl: {n.run}: {n.text}" if n.run else f"olmoctl: {n.text}"


def payload(n: Notice, fmt: str) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": text_of(n)}
    return {
        "source": "olmoctl",
        "event": n.kind,
        "run": n.run,
        "text": text_of(n),
        "ts": n.ts,
        "host": socket.gethostname(),
        **{k: v for k, v in n.fields.items() if k not in ("source", "event", "run", "text")},
    }


def email_message(n: Notice, sender: str, to: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[olmoctl] {n.kind}: {n.run or '-'}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    body = text_of(n)
    if n.fields:
        body += "\n\n" + json.dumps(n.fields, indent=2, sort_keys=True, default=str)
    msg.set_content(body + "\n")
    return msg


# -- SMTP settings --------------------------------------------------------------------------
@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    starttls: bool
    user: str | None
    password: str | None
    sender: str

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Smtp:
        """OLMOCTL_SMTP_HOST (required), _PORT (25; 587 with STARTTLS), _STARTTLS (1/0),
        _USER and _PASSWORD (both or neither), _FROM (default olmoctl@HOSTNAME)."""
        host = env.get("OLMOCTL_SMTP_HOST", "").strip()
        if not host:
            raise UsageError(
                "--notify-email needs an SMTP host: set OLMOCTL_SMTP_HOST "
                "(and OLMOCTL_SMTP_PORT, OLMOCTL_SMTP_STARTTLS=1, OLMOCTL_SMTP_USER/_PASSWORD)"
            )
        tls_word = env.get("OLMOCTL_SMTP_STARTTLS", "0").strip().lower()
        if tls_word not in ("0", "1", "true", "false", "yes", "no", ""):
            raise UsageError(
                f"OLMOCTL_SMTP_STARTTLS={shown(tls_word)}: expected 1 or 0 (true/false)"
            )
        tls = tls_word in ("1", "true", "yes")
        port_word = env.get("OLMOCTL_SMTP_PORT", "").strip()
        port = 587 if tls else 25
        if port_word:
            digits = port_word.isascii() and port_word.isdigit() and len(port_word) <= 5
            if not digits or not 0 < int(port_word) < 65536:
                raise UsageError(f"OLMOCTL_SMTP_PORT={shown(port_word)}: expected a port 1-65535")
            port = int(port_word)
        user, password = env.get("OLMOCTL_SMTP_USER"), env.get("OLMOCTL_SMTP_PASSWORD")
        if bool(user) != bool(password):
            raise UsageError("set both OLMOCTL_SMTP_USER and OLMOCTL_SMTP_PASSWORD, or neither")
        sender = env.get("OLMOCTL_SMTP_FROM") or f"olmoctl@{socket.gethostname()}"
        return cls(host, port, tls, user or None, password or None, sender)


# -- sending --------------------------------------------------------------------------------
class Notifier:
    """Sends each Notice to every configured destination; never raises."""

    def __init__(
        self,
        url: str | None = None,
        fmt: str = "auto",
        emails: list[str] | None = None,
        smtp: Smtp | None = None,
        log: Callable[[str], None] = lambda line: None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.emails, self.smtp, self.log = emails or [], smtp, log
        self.given = url  # as given, credentials and all: only _scrub sees it
        self.url, self.auth = split_credentials(url) if url else (None, None)
        self.fmt = pick_format(self.url, fmt) if self.url else fmt
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self.url or self.emails)

    def describe(self) -> str:
        """For the watch banner: where notices go (the URL redacted)."""
        parts = [f"{redact(self.url)} ({self.fmt})"] if self.url else []
        if self.emails and self.smtp:
            parts.append(f"{', '.join(self.emails)} via {self.smtp.host}:{self.smtp.port}")
        return "; ".join(parts) or "off"

    def __call__(self, n: Notice) -> None:
        if self.url:
            self._guard("webhook", redact(self.url), n, self._post)
        if self.emails and self.smtp:
            self._guard("email", f"{self.smtp.host}:{self.smtp.port}", n, self._mail)

    def _guard(self, what: str, where: str, n: Notice, send: Callable[[Notice], None]) -> None:
        try:
            send(n)
            self.sent += 1
        except Exception as e:  # a notice must never stop supervision
            self.failed += 1
            self.log(self._scrub(f"notify {what} to {where} failed ({n.kind}): {_why(e)}"))

    def _scrub(self, line: str) -> str:
        """Belt and braces: no message carries the URL, its path (the token) or password."""
        if self.url and self.given:
            for url in (self.given, self.url):
                line = line.replace(url, redact(url))
            given = urlsplit(self.given)
            for secret, shown_as in ((given.path, "/…"), (given.password, "…")):
                if secret and len(secret) > 3:  # not every "/" or "a" of the line
                    for form in {secret, unquote(secret)}:
                        line = line.replace(form, shown_as)
        return " ".join(line.split())

    def _post(self, n: Notice) -> None:
        assert self.url is not None
        data = json.dumps(payload(n, self.fmt), default=str).encode()
        req = urllib.request.Request(
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "olmoctl-watch"},
        )
        if self.auth:
            req.add_unredirected_header("Authorization", self.auth)
        with _opener().open(req, timeout=self.timeout_s) as resp:
            resp.read(65536)

    def _mail(self, n: Notice) -> None:
        s = self.smtp
        assert s is not None
        msg = email_message(n, s.sender, self.emails)
        with smtplib.SMTP(s.host, s.port, timeout=self.timeout_s) as client:
            if s.starttls:
                client.starttls()
            if s.user and s.password:
                client.login(s.user, s.password)
            client.send_message(msg)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx answer to the POST is a failure: urllib would repeat it as a GET without the
    notice, to any host, and to ftp:// as well as http(s)."""

    def _refuse(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any
    ) -> NoReturn:
        target = urljoin(req.full_url, headers.get("location") or headers.get("uri") or "")
        raise urllib.error.HTTPError(
            req.full_url, code, f"{msg}; redirect to {redact(target)} not followed", headers, fp
        )

    http_error_301 = http_error_302 = http_error_303 = _refuse
    http_error_307 = http_error_308 = _refuse


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects)


def _why(e: BaseException) -> str:
    """One line about a delivery failure, without the request (whose URL is secret)."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"{e.reason}"
    if isinstance(e, smtplib.SMTPResponseException):
        return f"SMTP {e.smtp_code} {e.smtp_error.decode(errors='replace')}"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
