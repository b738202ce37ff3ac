"""`olmoctl show` and `olmoctl card`: a run's record and its card (docs/reproducibility.md;
`launch --from` is in runs_cmds, `render --diff` in render_cmd)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from olmoctl.cli import options
from olmoctl.errors import UsageError


def _short(h: Any, n: int = 12) -> str:
    return str(h)[:n] if h else "-"


def _versions(env: dict[str, Any]) -> str:
    v = env.get("versions") or {}
    return ", ".join(f"{k} {v.get(k) or '-'}" for k in ("python", "torch", "cuda", "rocm", "numpy"))


def _devices(env: dict[str, Any]) -> str:
    d = env.get("devices") or {}
    if not d:
        return "-"
    nodes = ", ".join(env.get("nodes") or [])
    return f"{d.get('count')} x {d.get('name')} ({d.get('type')}) on {nodes or '?'}"


def _code(code: dict[str, Any] | None) -> str:
    if not code:
        return "-"
    git = code.get("git")
    if git is None:
        where = "not a git checkout"
    else:
        dirty = f", local changes {git.get('diff_file') or _short(git.get('diff_sha256'))}"
        where = f"git {_short(git.get('commit'))}{dirty if git.get('dirty') else ', clean'}"
    return f"olmoctl {code.get('version')}, {where}, source {_short(code.get('source_sha256'))}"


def _data_lines(rec: dict[str, Any]) -> list[str]:
    data = rec.get("data") or {}
    fp = data.get("job") or data.get("at_launch")
    src = "as the job read it" if data.get("job") else "at launch"
    head = f"synthetic corpus ({data.get('generator')})" if data.get("synthetic") else "files"
    out = [f"{head}; fingerprint {_short((fp or {}).get('sha256'))} ({src})" if fp else head]
    for f in (fp or {}).get("files") or []:
        if f.get("error"):
            out.append(f"  {f['path']}: {f['error']}")
        else:
            out.append(f"  {f['path']}  {f['size']} B  {_short(f['sha256'], 16)}  {f['method']}")
    gi = rec.get("global_indices")
    if gi:
        out.append(
            f"  global_indices.npy  {gi.get('size')} B  sha256 {gi.get('sha256')}  "
            f"(seed {gi.get('seed', '?')}, {gi.get('num_instances', '?')} instances)"
        )
    return out


def show(
    run: str = typer.Argument(..., help="The run."),
    config: bool = typer.Option(False, "--config", help="The resolved config (YAML)."),
    script: bool = typer.Option(False, "--script", help="The exact script an attempt submitted."),
    attempt: int | None = typer.Option(None, "--attempt", help="With --script: attempt K."),
    env: bool = typer.Option(False, "--env", help="Code, Python/torch/CUDA/ROCm, devices."),
    as_json: bool = options.JSON,
) -> None:
    """What a run recorded to be re-run exactly: config, scripts, code, environment, data."""
    from olmoctl.core import record, repro
    from olmoctl.core.launch import find_run
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
            typer.echo(text, nl=False)
        return
    rec = record.refresh(store, row)
    if config:
        if as_json:
            typer.echo(json.dumps(rec["config"], indent=2))
            return
        import yaml

        typer.echo(f"# {run}: resolved config (overrides: {rec.get('overrides') or 'none'})")
        typer.echo(yaml.safe_dump(rec["config"], sort_keys=False), nl=False)
        return
    if env:
        starts = [(a["attempt_no"], e) for a in rec.get("attempts") or [] for e in a.get("env")]
        if as_json:
            out = {
                "code": record.code_of(rec),
                "starts": [{"attempt": n, **e} for n, e in starts],
            }
            typer.echo(json.dumps(out, indent=2))
            return
        typer.echo(f"code (job):      {_code(record.code_of(rec))}")
        for sub in rec.get("submissions") or []:
            typer.echo(f"code (launch {sub['attempt']}): {_code(sub.get('code'))}")
        if not starts:
            typer.echo("no job start recorded yet: versions and devices come from the job")
        for n, e in starts:
            typer.echo(f"attempt {n} job {e.get('job_id')} start at step {e.get('start_step')}:")
            typer.echo(f"  {_versions(e)}")
            typer.echo(f"  devices {_devices(e)}")
        return
    if as_json:
        typer.echo(json.dumps(rec, indent=2))
        return
    _print_record(row, rec)
    if rec.get("from") and rec.get("environment"):
        src = record.stored(store, rec["from"]["run"])
        if src is not None:
            diffs = record.env_differences(src, rec)
            typer.echo(
                f"vs {rec['from']['run']}: "
                + ("; ".join(diffs) or "same code, packages, devices, data and data order")
            )


def _print_record(row: Any, rec: dict[str, Any]) -> None:
    from olmoctl.core import record

    cfg = rec["config"]
    src = rec.get("from")
    w = typer.echo
    w(
        f"run        {rec['run']}  ({cfg['recipe']['name']} on {cfg['cluster']['name']}, "
        f"{cfg['nodes']} node(s), {row.state})"
    )
    if src:
        w(f"from       {src['run']}" + "".join(f" -o {o}" for o in src.get("overrides") or []))
    w(f"config     sha256 {_short(rec.get('config_sha256'))}  (olmoctl show {rec['run']} --config)")
    w(f"overrides  {' '.join(rec.get('overrides') or []) or '-'}")
    w(f"seed       {rec.get('seed')}")
    w(f"code       {_code(record.code_of(rec))}")
    env = rec.get("environment") or {}
    w(f"env        {_versions(env) if env else '- (the job has not started)'}")
    w(f"devices    {_devices(env)}")
    lines = _data_lines(rec)
    w(f"data       {lines[0]}")
    for line in lines[1:]:
        w(f"         {line}")
    for a in rec.get("attempts") or []:
        w(
            f"attempt {a['attempt_no']}  job {a.get('job_id') or '-'}  {a.get('state')}  script "
            f"{a['script_file']} sha256 {_short(a.get('script_sha256'))}"
        )
    if rec.get("partial"):
        w(f"note       {rec['partial']}")


def card(
    run: str = typer.Argument(..., help="The run."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the card (default RUN_DIR/card)."
    ),
    as_json: bool = options.JSON,
) -> None:
    """Write a run card: Markdown + JSON with the record, attempts, goodput, loss curve PNG."""
    from olmoctl.core import card as core
    from olmoctl.store import Store

    paths = core.write(Store(), run, out)
    if as_json:
        typer.echo(json.dumps({k: str(v) for k, v in paths.items()}))
        return
    for p in paths.values():
        typer.echo(str(p))
    if "png" not in paths:
        typer.echo(
            "note: no loss plot (no steps yet, or matplotlib missing: olmoctl[plot])", err=True
        )


# ------------------------------------------------------------- called by launch and render
def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("card")(card)
