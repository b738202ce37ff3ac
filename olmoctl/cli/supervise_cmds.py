"""`olmoctl resume`, `watch` and `nodes`: acting on failures."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import typer

from olmoctl.cli import complete, exits, options, text


def resume(
    run: str = typer.Argument(..., autocompletion=complete.runs, help="The run to resume."),
    nodes: int | None = typer.Option(
        None,
        "--nodes",
        "-N",
        help="New node count.",
        click_type=options.INT,
        callback=options.bounded("--nodes", 1, options.NODES_MAX),
    ),
    override: list[str] = options.OVERRIDE,
    as_json: bool = options.JSON,
) -> None:
    """New attempt of RUN from its newest complete checkpoint, bad nodes excluded."""
    from olmoctl.core.supervise import watch as supervise
    from olmoctl.store import Store

    res = supervise.resume(Store(), run, nodes=nodes, overrides=override)
    out = {
        "run": res.run,
        "action": res.action,
        "job_id": res.job_id,
        "excluded_nodes": res.excluded,
        "torn_checkpoints_skipped": res.torn,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    excl = f", excluding {','.join(res.excluded)}" if res.excluded else ""
    torn = f"; skipped torn checkpoint(s) {res.torn}" if res.torn else ""
    if res.action == "steered":
        text.echo(f"{run}: Slurm requeued job {res.job_id}; kept it off {','.join(res.excluded)}")
    else:
        text.echo(f"{run}  job {res.job_id}{excl}{torn}")


def watch(
    runs: list[str] = typer.Argument(
        None, autocompletion=complete.runs, help="Runs to watch (default: all)."
    ),
    interval: float = typer.Option(
        30.0,
        "--interval",
        help="Seconds between polls.",
        click_type=options.FLOAT,
        callback=options.bounded("--interval", 0, options.DAY_S, above=True),
    ),
    max_retries: int = typer.Option(
        5,
        "--max-retries",
        help="Infrastructure retries per run.",
        click_type=options.INT,
        callback=options.bounded("--max-retries", 0, 1000),
    ),
    backoff: float = typer.Option(
        30.0,
        "--backoff",
        help="First retry delay (doubles).",
        click_type=options.FLOAT,
        callback=options.bounded("--backoff", 0, options.DAY_S),
    ),
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    until_done: bool = typer.Option(
        False,
        "--until-done",
        help="Exit when every watched run (default: every run in the store) is finished or "
        "needs a human: status 0 only when all COMPLETED, else the worst of what --wait "
        "would say for each, 1 (failed) before 4 (stopped, resumable) before 3 (cancelled).",
    ),
    straggler_policy: str = typer.Option(
        "report",
        "--straggler-policy",
        help="A node slower than --straggler-ratio for --straggler-intervals log intervals: "
        "report it, or restart (exclude the node, save, resume without it).",
        callback=options.one_of("--straggler-policy", ("report", "restart")),
    ),
    straggler_ratio: float = typer.Option(
        1.5,
        "--straggler-ratio",
        help="Slowest rank's compute per step over the median rank's that counts as slow.",
        click_type=options.FLOAT,
        callback=options.bounded("--straggler-ratio", 1, 1000, above=True),
    ),
    straggler_intervals: int = typer.Option(
        3,
        "--straggler-intervals",
        help="Consecutive slow log intervals before the policy acts.",
        click_type=options.INT,
        callback=options.bounded("--straggler-intervals", 1, 10_000),
    ),
    notify: str | None = typer.Option(
        None,
        "--notify",
        metavar="URL",
        help="POST each event to this webhook (default: $OLMOCTL_NOTIFY_URL). Never printed; "
        "user:password@ in it goes as HTTP basic auth, not in the URL; a redirect is not "
        "followed (a failure, logged).",
    ),
    notify_url_file: str | None = typer.Option(
        None,
        "--notify-url-file",
        help="Read the webhook URL from this regular file (mode 0600, at most 8 KiB).",
    ),
    notify_format: str = typer.Option(
        "auto",
        "--notify-format",
        help='slack ({"text": ...}), json (structured fields), or auto (slack for Slack\'s '
        "hooks, else json).",
        callback=options.one_of("--notify-format", ("auto", "slack", "json")),
    ),
    notify_email: list[str] = typer.Option(
        [],
        "--notify-email",
        metavar="ADDR",
        help="Mail each event to ADDR via $OLMOCTL_SMTP_HOST (_PORT, _STARTTLS, _USER, "
        "_PASSWORD, _FROM). Repeatable.",
    ),
) -> None:
    """Supervise runs: resume infrastructure failures, cancel hangs, report code errors and
    stragglers; notify a webhook or e-mail of what happens."""
    from rich.console import Console

    from olmoctl.core.supervise import watch as supervise
    from olmoctl.core.supervise.stragglers import StragglerPolicy
    from olmoctl.core.track.runs import find_run
    from olmoctl.store import Store

    store = Store()
    for name in runs or []:  # validate before the banner: an error is the only output
        find_run(store, name)
    console = Console(stderr=True)
    notifier = _notifier(store, console, notify, notify_url_file, notify_format, notify_email)
    owner = supervise.owner_id()
    policy = supervise.WatchPolicy(
        max_retries=max_retries,
        backoff_s=backoff,
        lease_s=max(60.0, 3 * interval),
        stragglers=StragglerPolicy(straggler_policy, straggler_ratio, straggler_intervals),
    )
    console.print(text.data(f"watch: {owner}, every {interval:g}s, log {store.dir / 'watch.log'}"))
    observer = None
    if notifier.enabled:
        from olmoctl.core.supervise.notices import Observer

        console.print(text.data(f"watch: notify {notifier.describe()}"))
        observer = Observer(store, runs or None)
    try:
        while True:
            for line in supervise.tick(store, owner, policy, runs or None, notifier):
                console.print(text.data(f"{time.strftime('%H:%M:%S')} {line}"), soft_wrap=True)
            for notice in observer.changes(store) if observer else []:
                notifier(notice)
            if until_done and supervise.all_settled(store, runs or None, max_retries):
                code = _until_done_status(store, runs or None, console)
                if code != exits.OK:
                    raise typer.Exit(code)
                return
            if once:
                return
            time.sleep(interval)
    finally:
        supervise.release_leases(store, owner)


def _until_done_status(store: Any, runs: list[str] | None, console: Any) -> int:
    """watch --until-done's exit status: --wait's for each run's end, the worst of them (each
    run that did not complete said on stderr, as --wait says it)."""
    from olmoctl.core.track.runs import find_run

    codes = []
    for run in store.runs() if runs is None else [find_run(store, r) for r in runs]:
        last = store.last_attempt(run.name)
        if last is None:  # never submitted: a sweep point cancelled before its turn
            code = exits.CANCELLED if run.state == "CANCELLED" else exits.FAILED
            outcome, reason = run.state, ""
        else:
            code = exits.of_run_end(last)
            outcome, reason = last.klass or last.state, f": {last.reason}" if last.reason else ""
        if code != exits.OK:
            line = f"watch: {run.name} ended {outcome}{reason} (exit status {code})"
            console.print(line, markup=False, soft_wrap=True)
        codes.append(code)
    return exits.worst(codes)


def _notifier(
    store: Any, console: Any, url: str | None, url_file: str | None, fmt: str, emails: list[str]
) -> Any:
    """The watch's Notifier from its options and the environment (bad input: exit 2)."""
    import os

    from olmoctl.core.supervise import notify as nt
    from olmoctl.core.supervise.watch import log_action

    env = dict(os.environ)
    target = nt.resolve_url(url, url_file, env)
    for addr in emails:
        nt.check_email(addr)
    smtp = nt.Smtp.from_env(env) if emails else None

    def failed(line: str) -> None:  # a notice that did not go out: said, logged, no more
        console.print(text.data(f"{time.strftime('%H:%M:%S')} {line}"), soft_wrap=True)
        log_action(store, None, "notify-failed", line)

    return nt.Notifier(target, fmt, emails, smtp, failed)


def nodes(
    cluster: str | None = typer.Option(
        None, "--cluster", "-c", autocompletion=complete.clusters, help="Only this cluster."
    ),
    clear: str | None = typer.Option(None, "--clear", help="Forget NODE's failures."),
    as_json: bool = options.JSON,
) -> None:
    """Node health: failures per node and why (the last reason; for a burn-in, the check and
    measured vs expected); at the profile's node_failure_threshold a node is excluded."""
    from olmoctl.core.track import health
    from olmoctl.store import Store

    store = Store()
    if clear is not None:
        n = health.clear(store, clear, cluster)
        text.echo(f"cleared {clear} ({n} record{'s' if n != 1 else ''})")
        return
    rows = store.nodes(cluster)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    from rich.console import Console

    if not rows:
        Console().print("no node failures recorded")
        return
    checked = any(r.last_check for r in rows)  # burn-in's columns only when it failed one
    cols = ("cluster", "node", "failures")
    cols += ("check", "measured / expected") if checked else ()
    t = text.table("node health", (*cols, "last reason", "when"), names=("cluster", "node"))
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.last_at)) if r.last_at else "-"
        cells = [r.cluster, r.node, str(r.failures)]
        if checked:
            vs = "-"
            if r.measured is not None or r.expected is not None:
                got = "-" if r.measured is None else f"{r.measured:.3g}"
                want = "-" if r.expected is None else f">= {r.expected:.3g}"
                vs = f"{got} / {want} {r.unit or ''}".strip()
            cells += [r.last_check or "-", vs]
        t.add_row(*map(text.data, (*cells, r.last_reason or "-", when)))
    text.show(Console(), t)


def register(app: typer.Typer) -> None:
    app.command("resume")(resume)
    app.command("watch")(watch)
    app.command("nodes")(nodes)
