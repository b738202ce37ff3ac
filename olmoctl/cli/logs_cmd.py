"""`olmoctl logs RUN [--attempt K] [--rank R] [-f]`: the job's output per rank."""

from __future__ import annotations

import sys
import time

import typer

from olmoctl.cli import complete, exits, options, text
from olmoctl.errors import flat, shown

POLL_S = 1.0


def logs(
    run: str = typer.Argument(..., autocompletion=complete.runs, help="The run."),
    attempt: int | None = options.attempt(),
    rank: int | None = typer.Option(
        None,
        "--rank",
        "-r",
        help="Only this rank (default: all).",
        click_type=options.INT,
        callback=options.bounded("--rank", 0, 100_000_000),
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Follow until the run ends (with --attempt: that attempt), then exit with the "
        "status --wait would (0 only when it COMPLETED).",
    ),
    batch: bool = typer.Option(False, "--batch", help="The batch script's own output instead."),
) -> None:
    """Print the job's output, per rank, with a header for each rank. The output is the job's
    text, shown as text: control characters in it (colour codes too) are printed escaped,
    e.g. \\x1b, never sent to the terminal; lines and tabs are kept."""
    from rich.console import Console

    from olmoctl.backends.registry import backend_for
    from olmoctl.core.track import logs as core
    from olmoctl.core.track import status
    from olmoctl.core.track.runs import find_run, spec_of
    from olmoctl.errors import UsageError
    from olmoctl.store import Store

    store = Store()
    row = find_run(store, run)
    chosen = core.pick_attempt(store, run, attempt)
    backend = backend_for(spec_of(row))
    fs = backend.files  # this machine, or a remote cluster's login node
    follower = core.Follower(fs)
    last_header: list[object] = [None]

    def files() -> dict[object, object]:
        if batch:
            f = core.batch_file(backend, row, chosen)
            return {"batch": f} if f else {}
        found = core.rank_files(backend, row, chosen)
        if rank is not None:
            return {rank: found[rank]} if rank in found else {}
        return dict(found)

    def drain() -> bool:
        wrote = read_once()
        while follower.behind:  # a file had more than one read's worth (fileread.CHUNK)
            wrote = read_once() or wrote
        for note in follower.take_news():  # a file that is not a regular file: not read
            typer.echo(f"note: {note}", err=True)
        return wrote

    def read_once() -> bool:
        wrote = False
        found = sorted(files().items(), key=lambda kv: str(kv[0]))
        new = follower.read_new_many([path for _, path in found])  # one read for all files
        for (key, _), data in zip(found, new, strict=True):
            if not data:
                continue
            if last_header[0] != key and (rank is None and not batch):
                sys.stdout.write(f"==> rank {key} <==\n")
                last_header[0] = key
            sys.stdout.write(text.lines(data.decode(errors="replace")))
            wrote = True
        sys.stdout.flush()
        return wrote

    if not follow:
        wrote = drain()
        if not wrote and follower.refused:
            raise UsageError(
                f"no output of run {shown(run)} attempt {chosen.attempt_no} could be read: "
                f"{len(follower.refused)} file(s) refused (the notes above)"
            )
        if not wrote and not files():
            what = f"rank {rank}" if rank is not None else "any rank"
            raise UsageError(
                f"no output yet for {what} of run {shown(run)} attempt {chosen.attempt_no}"
            )
        return
    console = Console(stderr=True)
    with console.status(text.data(f"{run}: waiting for output")) as spinner:
        while True:
            status.refresh(store, run_names=[run])
            now = store.attempts(run)
            if attempt is None and now[-1].attempt_no != chosen.attempt_no:
                # A newer attempt (requeue, resume): --wait waits for the run, so do we.
                drain()  # the rest of the one followed so far
                last_header[0] = None
                console.print(
                    f"{run}: now attempt {now[-1].attempt_no} (job {now[-1].job_id})", markup=False
                )
            chosen = next(a for a in now if a.attempt_no == (attempt or now[-1].attempt_no))
            drain()
            state = chosen.state
            if not chosen.is_live:
                drain()
                console.print(text.data(f"{run}: job {chosen.job_id} ended {state}"))
                code = exits.of_run_end(chosen)  # README's table, as --wait
                if code != exits.OK:
                    why = flat(str(chosen.klass or state))
                    console.print(f"{run}: exit status {code} ({why})", markup=False)
                    raise typer.Exit(code)
                return
            reason = f" ({chosen.reason})" if chosen.reason else ""
            spinner.update(text.data(f"{run}: job {chosen.job_id} {state}{reason}"))
            time.sleep(POLL_S)


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
