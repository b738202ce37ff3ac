"""`watch --notify` and stragglers for real: the `olmoctl watch` subprocess posts to an HTTP
server and mails an SMTP responder that the test runs (tests/sinks.py) over real runs; a
node slowed mid-run on the dev cluster (`scripts/dev-cluster slow-node`, a cgroup CPU
quota) is named as the straggler in events, `status RUN` and the notification.

The slowed-node test changes a node: run it under the EXCLUSIVE cluster lock
(flock -x /work/coord/cluster.lock ...); the notify test uses the local backend only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import HANG_GUARD_S, DevCluster, Olmoctl, wait_for
from tests.sinks import http_sink, smtp_sink

VENV_BIN = str(Path(sys.executable).parent)
TOKEN = "T0000/B0000/XXXXsecretXXXX"


def _olmoctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VENV_BIN + "/olmoctl", *args], env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)  # fmt: skip


def test_watch_notifies_a_webhook_and_mail_of_real_endings(tmp_path: Path) -> None:
    env = dict(os.environ, OLMOCTL_STATE_DIR=str(tmp_path / "state"),
               PATH=f"{VENV_BIN}:/usr/bin:/bin")  # fmt: skip
    root = f"cluster.runs_root={tmp_path / 'runs'}"
    names = ("n-ok", "n-bad")
    try:
        ok = _olmoctl(env, "launch", "tiny", "-c", "local", "--name", "n-ok", "-o", root,
                      "-o", "train.max_steps=3")  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        # Valid config, but its data file does not exist: the job itself fails.
        bad = _olmoctl(env, "launch", "tiny", "-c", "local", "--name", "n-bad", "-o", root,
                       "-o", "train.max_steps=3",
                       "-o", f"data.paths=[{tmp_path / 'missing.npy'}]")  # fmt: skip
        assert bad.returncode == 0, bad.stderr
        with http_sink() as (base, posts), smtp_sink() as (port, mails):
            url_file = tmp_path / "hook-url"
            url_file.write_text(f"{base}/hooks/{TOKEN}\n")
            url_file.chmod(0o600)
            watch_env = dict(env, OLMOCTL_SMTP_HOST="127.0.0.1", OLMOCTL_SMTP_PORT=str(port))
            res = subprocess.run(
                [VENV_BIN + "/olmoctl", "watch", *names, "--until-done", "--interval", "0.5",
                 "--notify-url-file", str(url_file), "--notify-email", "ops@example.org"],
                env=watch_env, capture_output=True, text=True, timeout=HANG_GUARD_S,
            )  # fmt: skip
            # n-bad failed in a way only a human can fix: 1 (0 only if every run COMPLETED).
            assert res.returncode == 1, res.stderr
            assert "n-bad ended CODE_ERROR" in res.stderr, res.stderr
            got = posts.wait_for(lambda i: len(i) >= 2, HANG_GUARD_S, "two notices")
            sent = mails.wait_for(lambda i: len(i) >= 2, HANG_GUARD_S, "two mails")
    finally:
        for name in names:
            _olmoctl(env, "cancel", name)
    by_run = {p["run"]: p for p in got}
    assert set(by_run) == set(names), got
    assert by_run["n-ok"]["event"] == "completed" and by_run["n-ok"]["source"] == "olmoctl"
    assert by_run["n-ok"]["last_step"] == 3
    failure = by_run["n-bad"]
    recorded = json.loads(_olmoctl(env, "status", "n-bad", "--json").stdout)["attempt_list"][-1]
    assert failure["event"] == "failure" and failure["class"] == recorded["klass"] != "COMPLETED"
    assert failure["evidence"] == recorded["evidence"] and failure["evidence"]
    assert f"ended: {recorded['klass']}" in failure["text"]
    assert sorted(m["Subject"] for m in sent) == [
        "[olmoctl] completed: n-ok",
        "[olmoctl] failure: n-bad",
    ]
    assert all(m["X-Sink-Rcpt"] == "ops@example.org" for m in sent)
    # The secret is nowhere: not on the terminal, not in the store or the watch log.
    assert TOKEN not in res.stdout + res.stderr and "/hooks/…" not in res.stderr
    assert f"{base}/…" in res.stderr
    for folder, _, files in os.walk(tmp_path / "state"):
        for f in files:
            assert TOKEN.encode() not in (Path(folder) / f).read_bytes(), f


def _two_nodes_past_step_10(
    olmoctl: Olmoctl, dev_cluster: DevCluster, name: str, max_steps: int
) -> Callable[[], list[dict]]:
    """Launch tiny on 2 dev nodes as NAME (a step event every 5 steps, no checkpoint on the
    way) and wait for its step 10; what reads its events.jsonl now."""
    res = olmoctl("launch", "tiny", "-c", "dev", "--nodes", "2", "--name", name, "-o",
                  olmoctl.root, "-o", f"train.max_steps={max_steps}", "-o",
                  "train.log_interval=5", "-o", "checkpoint.interval_steps=100000")  # fmt: skip
    assert res.returncode == 0, res.stderr
    dev_cluster.submitted.append(int(res.stdout.split()[2]))
    events = olmoctl.runs / name / "events.jsonl"

    def lines() -> list[dict]:
        text = events.read_text() if events.exists() else ""
        return [json.loads(x) for x in text.splitlines() if x.strip()]

    wait_for(lambda: any(e["event"] == "step" and e["step"] >= 10 for e in lines()),
             HANG_GUARD_S, "10 steps")  # fmt: skip
    return lines


@pytest.mark.slurm
def test_a_node_slowed_mid_run_is_named_the_straggler(
    olmoctl: Olmoctl, dev_cluster: DevCluster
) -> None:
    lines = _two_nodes_past_step_10(olmoctl, dev_cluster, "slow", max_steps=100000)
    started = next(e for e in lines() if e["event"] == "started")
    slowed = started["nodes"][1]  # rank 1's node
    fast = started["nodes"][0]
    watch = None
    try:
        with http_sink() as (base, posts):
            dev_cluster.script("slow-node", slowed, "--cpu", "10%")
            watch = subprocess.Popen(
                [VENV_BIN + "/olmoctl", "watch", "slow", "--interval", "1",
                 "--straggler-ratio", "2", "--straggler-intervals", "2",
                 "--notify", f"{base}/hook", "--notify-format", "json"],
                env=olmoctl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            got = posts.wait_for(
                lambda i: any(p["event"] == "straggler" for p in i), HANG_GUARD_S, "a straggler"
            )
        notice = next(p for p in got if p["event"] == "straggler")
        assert notice["node"] == slowed and notice["run"] == "slow", notice
        assert notice["ratio"] >= 2 and notice["policy"] == "report"
        found = [e for e in lines() if e["event"] == "straggler"]
        assert found[-1]["node"] == slowed and found[-1]["ratio"] >= 2, found[-3:]
        assert {s["node"] for s in found[-1]["slowest"]} == {slowed, fast}
        shown = olmoctl("status", "slow")
        assert shown.returncode == 0, shown.stderr
        assert f"straggler: {slowed} (rank 1)" in shown.stdout, shown.stdout
        assert olmoctl.run_state("slow")["straggler"]["node"] == slowed
        assert olmoctl.json("nodes") == []  # report: nothing excluded
    finally:
        if watch is not None:
            watch.terminate()
            watch.communicate(timeout=HANG_GUARD_S)
        dev_cluster.script("slow-node", slowed, "--cpu", "100%")
        olmoctl("cancel", "slow")


@pytest.mark.slurm
@pytest.mark.burnin  # the restart burns in too, with the slowed node still up
def test_restart_policy_restarts_without_the_slowed_node(
    olmoctl: Olmoctl, dev_cluster: DevCluster
) -> None:
    lines = _two_nodes_past_step_10(olmoctl, dev_cluster, "slowr", max_steps=150)
    slowed = next(e for e in lines() if e["event"] == "started")["nodes"][1]
    watch = None
    try:
        dev_cluster.script("slow-node", slowed, "--cpu", "10%")
        watch = subprocess.Popen(
            [VENV_BIN + "/olmoctl", "watch", "slowr", "--until-done", "--interval", "1",
             "--backoff", "0", "--straggler-policy", "restart", "--straggler-ratio", "2",
             "--straggler-intervals", "2"],
            env=olmoctl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _, err = watch.communicate(timeout=HANG_GUARD_S)
        assert watch.returncode == 0, err
        err = " ".join(err.split())
        assert f"node {slowed} is a straggler" in err and "asked to save and restart" in err
        done = olmoctl.run_state("slowr")
        assert done["state"] == "COMPLETED" and done["step"] == 150, (done, err)
        (row,) = [r for r in olmoctl.json("nodes") if r["node"] == slowed]
        assert row["last_reason"].startswith("straggler: "), row
        starts = [e for e in lines() if e["event"] == "started"]
        assert len(starts) >= 2 and slowed not in starts[-1]["nodes"], starts
        assert starts[-1]["start_step"] > 0  # resumed from the save the USR2 asked for
        assert any(e["event"] == "signal_received" and e["signal"] == "SIGUSR2" for e in lines())
    finally:
        if watch is not None and watch.poll() is None:
            watch.terminate()
            watch.communicate(timeout=HANG_GUARD_S)
        dev_cluster.script("slow-node", slowed, "--cpu", "100%")
        olmoctl("cancel", "slowr")
