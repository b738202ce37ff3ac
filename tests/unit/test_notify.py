"""watch notifications (core/supervise/notify.py): formats, the secret kept out of every message,
bad options, and delivery to real local receivers (tests/sinks.py: an HTTP server and a
minimal SMTP responder); what watch announces (core/supervise/notices.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from olmoctl.core.supervise import notify
from olmoctl.core.supervise import watch as supervise
from olmoctl.core.supervise.notices import Observer
from olmoctl.errors import UsageError
from olmoctl.store import Store
from tests.sinks import http_sink, smtp_sink

TOKEN = "T0000/B0000/XXXXsecretXXXX"
SLACK = f"https://hooks.slack.com/services/{TOKEN}"
GUARD_S = 120.0  # hang guard


def notice(**kw) -> notify.Notice:
    base = {"kind": "failure", "run": "r1", "text": "attempt 1 (job 7) ended: NODE_FAIL: x"}
    return notify.Notice(**{**base, **kw}, fields={"class": "NODE_FAIL", "evidence": {"n": 1}})


def test_redact_keeps_only_scheme_host_port() -> None:
    assert notify.redact(SLACK) == "https://hooks.slack.com/…"
    assert notify.redact("http://127.0.0.1:8080/hook?key=abc") == "http://127.0.0.1:8080/…"
    assert TOKEN not in notify.redact(SLACK)


def test_formats() -> None:
    n = notice()
    text = "olmoctl: r1: attempt 1 (job 7) ended: NODE_FAIL: x"
    assert notify.payload(n, "slack") == {"text": text}
    body = notify.payload(n, "json")
    assert body["event"] == "failure" and body["run"] == "r1" and body["source"] == "olmoctl"
    assert body["class"] == "NODE_FAIL" and body["evidence"] == {"n": 1}
    assert notify.pick_format(SLACK, "auto") == "slack"
    assert notify.pick_format("https://example.org/hooks/slack", "auto") == "slack"
    assert notify.pick_format("https://example.org/notify", "auto") == "json"
    assert notify.pick_format(SLACK, "json") == "json"
    msg = notify.email_message(n, "olmoctl@h", ["a@b.org", "c@d.org"])
    assert msg["Subject"] == "[olmoctl] failure: r1" and msg["To"] == "a@b.org, c@d.org"
    assert '"class": "NODE_FAIL"' in msg.get_content()


def test_webhook_json_to_a_real_server_and_failures_are_logged_redacted() -> None:
    logged: list[str] = []
    with http_sink() as (base, got):
        n = notify.Notifier(f"{base}/hook/{TOKEN}", "auto", log=logged.append)
        n(notice())
        items = got.wait_for(lambda i: len(i) == 1, GUARD_S, "one POST")
    assert items[0]["event"] == "failure" and items[0]["class"] == "NODE_FAIL"
    assert got.paths == [f"/hook/{TOKEN}"] and logged == [] and n.sent == 1

    with http_sink(status=500) as (base, got):
        url = f"{base}/hook/{TOKEN}"
        n = notify.Notifier(url, "slack", log=logged.append)
        n(notice())
        assert got.wait_for(lambda i: len(i) == 1, GUARD_S, "one POST")[0] == {
            "text": "olmoctl: r1: attempt 1 (job 7) ended: NODE_FAIL: x"
        }
    assert len(logged) == 1 and "HTTP 500" in logged[0] and n.failed == 1
    assert TOKEN not in logged[0] and "/hook" not in logged[0] and base in logged[0]

    with socket.socket() as s:  # a port nobody listens on: refused, logged, no exception
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logged.clear()
    notify.Notifier(f"http://127.0.0.1:{port}/x/{TOKEN}", log=logged.append)(notice())
    assert len(logged) == 1 and "failed" in logged[0] and TOKEN not in logged[0]


def test_a_silent_endpoint_times_out_and_is_logged() -> None:
    with socket.socket() as srv:  # accepts (backlog) but never answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        logged: list[str] = []
        url = f"http://127.0.0.1:{srv.getsockname()[1]}/{TOKEN}"
        notify.Notifier(url, log=logged.append, timeout_s=0.5)(notice())
    assert len(logged) == 1 and "timed out" in logged[0] and TOKEN not in logged[0]


def test_email_through_a_real_smtp_responder() -> None:
    with smtp_sink() as (port, got):
        env = {"OLMOCTL_SMTP_HOST": "127.0.0.1", "OLMOCTL_SMTP_PORT": str(port),
               "OLMOCTL_SMTP_FROM": "watch@example.org"}  # fmt: skip
        smtp = notify.Smtp.from_env(env)
        logged: list[str] = []
        notify.Notifier(emails=["ops@example.org"], smtp=smtp, log=logged.append)(notice())
        msgs = got.wait_for(lambda i: len(i) == 1, GUARD_S, "one mail")
    assert logged == []
    assert msgs[0]["Subject"] == "[olmoctl] failure: r1"
    assert msgs[0]["X-Sink-Rcpt"] == "ops@example.org" and msgs[0]["From"] == "watch@example.org"
    assert "NODE_FAIL" in msgs[0].get_payload()


def test_smtp_settings_from_env() -> None:
    s = notify.Smtp.from_env({"OLMOCTL_SMTP_HOST": "mail", "OLMOCTL_SMTP_STARTTLS": "1"})
    assert (s.host, s.port, s.starttls, s.user) == ("mail", 587, True, None)
    with pytest.raises(UsageError, match="needs an SMTP host"):
        notify.Smtp.from_env({})
    with pytest.raises(UsageError, match="OLMOCTL_SMTP_PORT='x'"):
        notify.Smtp.from_env({"OLMOCTL_SMTP_HOST": "m", "OLMOCTL_SMTP_PORT": "x"})
    with pytest.raises(UsageError, match="both"):
        notify.Smtp.from_env({"OLMOCTL_SMTP_HOST": "m", "OLMOCTL_SMTP_USER": "u"})


def test_url_sources_and_the_0600_file(tmp_path: Path) -> None:
    f = tmp_path / "hook"
    f.write_text(f"# my hook\n{SLACK}\n")
    f.chmod(0o600)
    assert notify.resolve_url(None, str(f), {}) == SLACK
    assert notify.resolve_url(None, None, {"OLMOCTL_NOTIFY_URL": SLACK}) == SLACK
    assert notify.resolve_url(None, None, {}) is None
    f.chmod(0o644)
    with pytest.raises(UsageError, match=r"readable or writable by others \(mode 0644\)") as e:
        notify.resolve_url(None, str(f), {})
    assert TOKEN not in str(e.value)
    with pytest.raises(UsageError, match="not an http") as e:
        notify.resolve_url(f"ftp://x/{TOKEN}", None, {})
    assert TOKEN not in str(e.value)


def test_watch_refuses_bad_notify_options_in_one_line(cli, tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "hook"
    f.write_text(SLACK + "\n")
    f.chmod(0o640)
    res = cli("watch", "--once", "--notify-url-file", str(f))
    assert res.code == 2 and "mode 0640" in res.err and len(res.err.strip().splitlines()) == 1
    assert TOKEN not in res.err + res.out
    res = cli("watch", "--once", "--notify", f"hooks.slack.com/{TOKEN}")
    assert res.code == 2 and "not an http(s) URL" in res.err and TOKEN not in res.err
    res = cli("watch", "--once", "--notify-email", "ops@example.org,evil@x.org")
    assert res.code == 2 and "not an address" in res.err
    monkeypatch.delenv("OLMOCTL_SMTP_HOST", raising=False)
    res = cli("watch", "--once", "--notify-email", "ops@example.org")
    assert res.code == 2 and "OLMOCTL_SMTP_HOST" in res.err
    res = cli("watch", "--once", "--notify-format", "slak")
    assert res.code == 2 and "did you mean slack?" in res.err
    res = cli("watch", "--once", "--straggler-policy", "restrat")
    assert res.code == 2 and "did you mean restart?" in res.err
    res = cli("watch", "--once", "--straggler-ratio", "1")
    assert res.code == 2 and "--straggler-ratio must be above 1" in res.err
    f.chmod(0o600)
    res = cli("watch", "--once", "--notify-url-file", str(f))  # an empty store: nothing to say
    assert res.code == 0 and "hooks.slack.com/…" in res.err and TOKEN not in res.err + res.out
    assert not any(TOKEN in p.read_text(errors="replace") for p in _files(tmp_path / "state"))


def _files(root: Path) -> list[Path]:
    return [Path(d) / n for d, _, names in os.walk(root) for n in names]


def test_observer_announces_endings_and_exclusions_once(run: Store) -> None:
    with run.tx() as tx:  # known before the watcher started: not news
        tx.node_failure("dev", "node1", "node failure on node1")
        tx.node_failure("dev", "node1", "node failure on node1")
    obs = Observer(run, None)
    assert obs.changes(run) == []
    with run.tx() as tx:
        a = tx.last_attempt("r")
        why, evidence = "node failure on node3", {"sacct": "NODE_FAIL"}
        tx.update_attempt(a.id, state="NODE_FAIL", klass="NODE_FAIL", ended_at=1.0,
                          reason=why, evidence=evidence)  # fmt: skip
        tx.node_failure("dev", "node3", "node failure on node3")
        tx.node_failure("dev", "node3", "node failure on node3")
    got = obs.changes(run)
    assert [n.kind for n in got] == ["failure", "node_excluded"]
    assert got[0].fields["class"] == "NODE_FAIL"
    assert got[0].fields["evidence"] == {"sacct": "NODE_FAIL"}
    assert got[1].fields["node"] == "node3" and "node failure on node3" in got[1].text
    assert obs.changes(run) == []  # once


def test_tick_notifies_a_resume_and_a_spent_budget(run: Store) -> None:
    with run.tx() as tx:
        a = tx.last_attempt("r")
        tx.update_attempt(a.id, state="NODE_FAIL", klass="NODE_FAIL", ended_at=1.0)
    sent: list[notify.Notice] = []
    policy = supervise.WatchPolicy(max_retries=0, backoff_s=0)
    supervise.tick(run, "me", supervise.WatchPolicy(backoff_s=0), ["r"], sent.append)
    assert [n.kind for n in sent] == ["resume"] and sent[0].fields["after"] == "NODE_FAIL"
    with run.tx() as tx:  # the new attempt fails too; no retries left
        a = tx.last_attempt("r")
        tx.update_attempt(a.id, state="NODE_FAIL", klass="NODE_FAIL", ended_at=1.0)
    sent.clear()
    supervise.tick(run, "me", policy, ["r"], sent.append)
    supervise.tick(run, "me", policy, ["r"], sent.append)
    assert [n.kind for n in sent] == ["gave_up"]
