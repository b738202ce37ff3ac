"""`olmoctl show` and `olmoctl card`: a run's record and its card (docs/reproducibility.md;
`launch --from` is in runs_cmds, `render --diff` in render_cmd)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from olmoctl.cli import complete, options
from olmoctl.cli.text import echo, lines
from olmoctl.errors import UsageError

if TYPE_CHECKING:
    from olmoctl.schemas.record import Code, Record, StartEnv


def _short(h: Any, n: int = 12) -> str:
    return str(h)[:n] if h else "-"


def _versions(env: StartEnv) -> str:
    v = env.versions.model_dump() if env.versions else {}
    return ", ".join(f"{k} {v.get(k) or '-'}" for k in ("python", "torch", "cuda", "rocm", "numpy"))


def _devices(env: StartEnv | None) -> str:
    d = env.devices if env else None
    if env is None or d is None:
        return "-"
    nodes = ", ".join(env.nodes or [])
    return f"{d.count} x {d.name} ({d.type}) on {nodes or '?'}"


def _code(code: Code | None) -> str:
    if code is None:
        return "-"
    git = code.git
    if git is None:
        where = "not a git checkout"
    else:
        dirty = f", local changes {git.diff_file or _short(git.diff_sha256)}"
        where = f"git {_short(git.commit)}{dirty if git.dirty else ', clean'}"
    return f"olmoctl {code.version}, {where}, source {_short(code.source_sha256)}"


def _data_lines(rec: Record) -> list[str]:
    data = rec.data
    fp = data.fingerprint()
    src = "as the job read it" if data.job else "at launch"
    head = f"synthetic corpus ({data.generator})" if data.synthetic else "files"
    out = [f"{head}; fingerprint {_short(fp.sha256)} ({src})" if fp else head]
    for f in fp.files if fp else []:
        if f.error:
            out.append(f"  {f.path}: {f.error}")
        else:
            out.append(f"  {f.path}  {f.size} B  {_short(f.sha256, 16)}  {f.method}")
    gi = rec.global_indices
    if gi:
        seed = "?" if gi.seed is None else gi.seed
        n = "?" if gi.num_instances is None else gi.num_instances
        out.append(
            f"  global_indices.npy  {gi.size} B  sha256 {gi.sha256}  (seed {seed}, {n} instances)"
        )
    return out


def show(
    run: str = typer.Argument(..., autocompletion=complete.runs, help="The run."),
    config: bool = typer.Option(False, "--config", help="The resolved config (YAML)."),
    script: bool = typer.Option(False, "--script", help="The exact script an attempt submitted."),
    attempt: int | None = options.attempt("With --script: attempt K."),
    env: bool = typer.Option(False, "--env", help="Code, Python/torch/CUDA/ROCm, devices."),
    as_json: bool = options.JSON,
) -> None:
    """What a run recorded to be re-run exactly: config, scripts, code, environment, data."""
    from olmoctl.core.launch import repro
    from olmoctl.core.records import record
    from olmoctl.core.track.runs import find_run
    from olmoctl.schemas.record import Record
    from olmoctl.store import Store

    if sum((config, script, env)) > 1:
        raise UsageError("give one of --config, --script, --env")
    if attempt is not None and not script:
        raise UsageError("--attempt goes with --script")
    store = Store()
    row = find_run(store, run)
    if script:
        no, text = repro.attempt_script(store, run, attempt)
        if as_json:
            typer.echo(json.dumps({"run": run, "attempt": no, "script": text}))
        else:
            typer.echo(lines(text), nl=False)  # the store's or the run dir's copy
        return
    raw = record.refresh(store, row)  # record.json as written: --json prints it as is
    rec = Record.of(raw)
    if config:
        if as_json:
            typer.echo(json.dumps(rec.config, indent=2))
            return
        import yaml

        echo(f"# {run}: resolved config (overrides: {rec.overrides or 'none'})")
        typer.echo(lines(yaml.safe_dump(rec.config, sort_keys=False)), nl=False)
        return
    if env:
        starts = [(a.attempt_no, e) for a in rec.attempts for e in a.env]
        if as_json:
            code = rec.code()
            out = {
                "code": code.model_dump(exclude_unset=True) if code else None,
                "starts": [{"attempt": n, **e.model_dump(exclude_unset=True)} for n, e in starts],
            }
            typer.echo(json.dumps(out, indent=2))
            return
        echo(f"code (job):      {_code(rec.code())}")
        for sub in rec.submissions:
            echo(f"code (launch {sub.attempt}): {_code(sub.code)}")
        if not starts:
            typer.echo("no job start recorded yet: versions and devices come from the job")
        for n, e in starts:
            echo(f"attempt {n} job {e.job_id} start at step {e.start_step}:")
            echo(f"  {_versions(e)}")
            echo(f"  devices {_devices(e)}")
        return
    if as_json:
        typer.echo(json.dumps(raw, indent=2))
        return
    _print_record(row, rec)
    if rec.from_ and rec.environment:
        src = record.stored(store, rec.from_.run)
        if src is not None:
            diffs = record.env_differences(Record.of(src), rec)
            echo(
                f"vs {rec.from_.run}: "
                + ("; ".join(diffs) or "same code, packages, devices, data and data order")
            )


def _print_record(row: Any, rec: Record) -> None:
    cfg = rec.config
    src = rec.from_
    w = echo  # record.json is in the run dir: data
    w(
        f"run        {rec.run}  ({cfg['recipe']['name']} on {cfg['cluster']['name']}, "
        f"{cfg['nodes']} node(s), {row.state})"
    )
    if src:
        w(f"from       {src.run}" + "".join(f" -o {o}" for o in src.overrides))
    w(f"config     sha256 {_short(rec.config_sha256)}  (olmoctl show {rec.run} --config)")
    w(f"overrides  {' '.join(rec.overrides) or '-'}")
    w(f"seed       {rec.seed}")
    w(f"code       {_code(rec.code())}")
    env = rec.environment
    w(f"env        {_versions(env) if env else '- (the job has not started)'}")
    w(f"devices    {_devices(env)}")
    lines = _data_lines(rec)
    w(f"data       {lines[0]}")
    for line in lines[1:]:
        w(f"         {line}")
    for a in rec.attempts:
        w(
            f"attempt {a.attempt_no}  job {a.job_id or '-'}  {a.state}  script "
            f"{a.script_file} sha256 {_short(a.script_sha256)}"
        )
    if rec.partial:
        w(f"note       {rec.partial}")


def card(
    run: str = typer.Argument(..., autocompletion=complete.runs, help="The run."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the card (default RUN_DIR/card)."
    ),
    as_json: bool = options.JSON,
) -> None:
    """Write a run card: Markdown + JSON with the record, attempts, goodput, loss curve PNG."""
    from olmoctl.core.outputs import card as core
    from olmoctl.core.plan.predict import for_run
    from olmoctl.store import Store

    paths = core.write(Store(), run, out, predict=for_run)
    if as_json:
        typer.echo(json.dumps({k: str(v) for k, v in paths.items()}))
        return
    for p in paths.values():
        echo(str(p))
    if "png" not in paths:
        typer.echo(
            "note: no loss plot (no steps yet, or matplotlib missing: olmoctl[plot])", err=True
        )


# ------------------------------------------------------------- called by launch and render
def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("card")(card)
