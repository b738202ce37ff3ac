"""What every run records to be re-run bit for bit: RUN_DIR/record.json, indexed in the store.

The record holds the resolved config (the RunSpec), each attempt's exact script (path and
sha256; the text is in scripts/attempt-N.sh and in the store), the code that rendered and
ran it (olmoctl version, sha256 of olmoctl's source, git commit, and a diff file when the
checkout had local changes), the environment each attempt saw (Python, torch, numpy,
CUDA/ROCm, devices: from the job's `started` event), the seed, and a data fingerprint
(token files' names, sizes and bounded hashes, see olmoctl.provenance; the sha256 of
global_indices.npy).

Two moments write it: `at_submit` (the launcher, before each submission: config, launcher
code, data as it is at launch) and `refresh` (whenever olmoctl reads the run: attempts from
the store, environment, data and indices as the job reported them). The store's copy is
complete on its own, so `show` and `card` work where the run directory is not reachable.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from olmoctl import fileread, provenance
from olmoctl.core.records.compare import (
    PROBE,
    VERSION_KEYS,
    differences,
    env_differences,
    probe_now,
)
from olmoctl.core.records.fingerprint import (
    config_sha256,
    data_fingerprint,
    data_paths,
    local,
    sha256_text,
)
from olmoctl.core.track import events as ev
from olmoctl.errors import UsageError
from olmoctl.fileio import atomic_write
from olmoctl.schemas import RunSpec
from olmoctl.schemas.bounded import RUN_FILE, load_json, read_text
from olmoctl.schemas.contract import (
    CODE_DIR,
    INDICES_FILE,
    INDICES_META,
    RECORD_FILE,
    SYNTHETIC_FILE,
    script_file,
)
from olmoctl.schemas.events import Started
from olmoctl.schemas.record import Record
from olmoctl.store import DamagedRow, RecordIndex, Run, Store, Tx

# Comparing and fingerprinting live in record_compare and record_fingerprint; their names
# are re-exported so that callers keep using `record.X` for everything about records.
__all__ = [
    "FORMAT",
    "PROBE",
    "SYNTHETIC_SOURCE",
    "VERSION_KEYS",
    "at_submit",
    "config_sha256",
    "data_fingerprint",
    "data_paths",
    "differences",
    "env_differences",
    "local",
    "mark_from",
    "new_record",
    "probe_now",
    "read_file",
    "refresh",
    "save",
    "sha256_text",
    "stored",
]

FORMAT = 1
META_MAX = 64 * 1024  # RUN_DIR/global_indices.json: a few numbers
SYNTHETIC_SOURCE = "olmoctl.train.corpus.generate_documents(400000, seed=0), byte tokens"


# ------------------------------------------------------------------------------ write
# The writers below build record.json as plain JSON (what is on disk is exactly what they
# wrote); readers parse it with olmoctl.schemas.record.Record.of.
def read_file(run_dir: str | Path) -> dict[str, Any] | None:
    # Unreadable, too large, too deep or not JSON: no record (bounded: a run directory is
    # only as trustworthy as whoever can write to it).
    path = Path(run_dir) / RECORD_FILE
    try:
        text = read_text(path, "record", RUN_FILE, follow=False)  # a link is refused
        data = load_json(text, str(path), RUN_FILE)
    except UsageError:
        return None
    return data if isinstance(data, dict) else None


def stored(store: Store, name: str) -> dict[str, Any] | None:
    return store.stored_record(name)


def save(store: Store, spec: RunSpec, rec: dict[str, Any], tx: Tx | None = None) -> None:
    """record.json (atomically, when the run directory is here) + its index row."""
    rec["updated_at"] = time.time()
    r = Record.of(rec)  # first: a record that does not validate is never written
    code = r.code()
    git = code.git if code else None
    data = r.data.fingerprint()
    index = RecordIndex(
        run_name=spec.name,
        from_run=r.from_.run if r.from_ else None,
        olmoctl_version=code.version if code else None,
        git_commit=git.commit if git else None,
        git_dirty=None if git is None else int(bool(git.dirty)),
        source_sha256=code.source_sha256 if code else None,
        seed=r.seed,
        data_sha256=data.sha256 if data else None,
        indices_sha256=r.global_indices.sha256 if r.global_indices else None,
    )
    text = json.dumps(rec, indent=2, sort_keys=False) + "\n"
    run_dir = Path(spec.run_dir)
    if local(spec) and run_dir.is_dir():
        atomic_write(run_dir / RECORD_FILE, text)
    if tx is not None:
        tx.save_record(index, rec, rec["updated_at"])
    else:
        with store.tx() as t:
            t.save_record(index, rec, rec["updated_at"])


def new_record(spec: RunSpec) -> dict[str, Any]:
    config = spec.model_dump(mode="json")
    return {
        "format": FORMAT,
        "run": spec.name,
        "created_at": time.time(),
        "from": None,
        "config": config,
        "config_sha256": config_sha256(spec),
        "overrides": list(spec.overrides),
        "seed": spec.recipe.train.seed,
        "submissions": [],
        "attempts": [],
        "environment": None,
        "data": {
            "synthetic": not spec.recipe.data.paths,
            "paths": list(spec.recipe.data.paths),
            "dtype": spec.recipe.data.dtype,
            "generator": SYNTHETIC_SOURCE if not spec.recipe.data.paths else None,
            "at_launch": None,
            "job": None,
        },
        "global_indices": None,
    }


def at_submit(store: Store, spec: RunSpec, attempt_no: int, script: str) -> dict[str, Any]:
    """The launcher, after writing the run directory and before submitting attempt N: the
    config (first attempt), the code that rendered the script, the script's hash, and the
    data as it is now. Called inside launch's undo-on-failure block."""
    rec = stored(store, spec.name) or (read_file(spec.run_dir) if local(spec) else None)
    if rec is None or rec.get("run") != spec.name:
        rec = new_record(spec)
    code = provenance.code_version(with_diff=True)
    git = code.get("git")
    if git and git.get("diff"):
        diff = git.pop("diff")
        rel = f"{CODE_DIR}/{git['diff_sha256'][:16]}.diff"
        if local(spec):
            (Path(spec.run_dir) / CODE_DIR).mkdir(exist_ok=True)
            if not (Path(spec.run_dir) / rel).exists():
                atomic_write(Path(spec.run_dir) / rel, diff)
            git["diff_file"] = rel
        else:  # the run directory is remote: the store's record carries the diff itself
            git["diff"] = diff
    elif git:
        git.pop("diff", None)
    rec["submissions"] = [s for s in rec.get("submissions", []) if s["attempt"] != attempt_no]
    rec["submissions"].append(
        {
            "attempt": attempt_no,
            "at": time.time(),
            "host": socket.gethostname(),
            "code": code,
            "script_file": script_file(attempt_no),
            "script_sha256": sha256_text(script),
            "exclude_nodes": list(spec.exclude_nodes),
        }
    )
    if rec["data"].get("at_launch") is None:
        rec["data"]["at_launch"] = data_fingerprint(spec)
    save(store, spec, rec)
    return rec


def mark_from(store: Store, spec: RunSpec, source: str, overrides: list[str]) -> dict[str, Any]:
    """A run made by `launch --from SOURCE`: say so, with the overrides added on top."""
    rec = stored(store, spec.name) or new_record(spec)
    rec["from"] = {"run": source, "overrides": list(overrides)}
    save(store, spec, rec)
    return rec


# ------------------------------------------------------------------------------ refresh
def _env_of(started: Started) -> dict[str, Any]:
    return {
        "job_id": started.job_id,
        "started_ts": started.ts,
        "start_step": started.start_step,
        "nodes": started.nodes,
        "world_size": started.world_size,
        "versions": started.versions,
        "devices": started.devices,
        "code": started.code,
    }


def _usable(rec: dict[str, Any] | None) -> dict[str, Any] | None:
    from pydantic import ValidationError

    try:
        return rec if rec is not None and Record.of(rec) else None
    except (ValidationError, ValueError, TypeError, RecursionError):
        return None


def refresh(store: Store, row: Run) -> dict[str, Any]:
    """Bring the record up to date with the store (attempts) and the run directory (the
    job's `started` events, global_indices.npy); save it if anything changed."""
    from pydantic import ValidationError

    from olmoctl.schemas.errors import one_line

    try:
        spec = RunSpec.model_validate(row.spec_data)  # DamagedRow (one line) if not JSON
    except ValidationError as e:  # as track.runs.spec_of
        raise DamagedRow(row.name, f"spec_json: {one_line(e, RunSpec)}") from None
    # The store's copy, else record.json: whichever still reads as a Record (a damaged row
    # or a hostile file is no record, never a ValidationError half-way through).
    rec = _usable(stored(store, spec.name))
    if rec is None and local(spec):
        rec = _usable(read_file(spec.run_dir))
    if rec is None:  # a run from before records existed: what can still be known
        rec = new_record(spec)
        rec["partial"] = "recorded after the fact: no launcher code version or launch data"
    before = json.dumps(rec, sort_keys=True)
    starts: list[Started] = []
    if local(spec):
        starts = ev.started(ev.read_events(spec.run_dir, None))
    subs = {s["attempt"]: s for s in rec.get("submissions", [])}
    attempts = []
    rows = store.attempts(spec.name)
    for i, a in enumerate(rows):
        item: dict[str, Any] = a.fields()
        script = a.script
        item["script_file"] = script_file(a.attempt_no)
        item["script_sha256"] = sha256_text(script) if script else None
        sub = subs.get(a.attempt_no)
        if sub is not None:
            item["launcher_code"] = {
                k: v for k, v in (sub.get("code") or {}).items() if k != "diff"
            }
        mine = [s for s in starts if a.job_id and str(s.job_id) == str(a.job_id)]
        if not mine and a.submitted_at:  # job ids spelled otherwise (array tasks): by time
            until = rows[i + 1].submitted_at if i + 1 < len(rows) else None
            mine = [
                s
                for s in starts
                if (s.ts or 0) >= a.submitted_at and (until is None or (s.ts or 0) < until)
            ]
        item["env"] = [_env_of(s) for s in mine]
        attempts.append(item)
    rec["attempts"] = attempts
    if starts:
        last = starts[-1]
        rec["environment"] = _env_of(last)
        if last.data:
            rec["data"]["job"] = last.data
        if last.global_indices:
            rec["global_indices"] = dict(last.global_indices)
    if local(spec):
        indices = Path(spec.run_dir) / INDICES_FILE
        gi = rec.get("global_indices") or {}
        if indices.exists() and (not gi or gi.get("size") != indices.stat().st_size):
            # extended since the job reported it (bounded, and a link or FIFO is refused)
            gi = provenance.fingerprint_file(indices, follow=False)
        if gi:
            try:
                meta = json.loads(fileread.read_head(Path(spec.run_dir) / INDICES_META, META_MAX))
                gi.update({k: meta[k] for k in ("seed", "num_instances", "seq_len", "length")})
            except (OSError, ValueError, KeyError, TypeError, UsageError):
                pass  # unreadable, refused (not a regular file), or not the job's
            rec["global_indices"] = gi
        if rec["data"].get("synthetic") and rec["data"].get("job") is None:
            synth = Path(spec.run_dir) / SYNTHETIC_FILE
            if synth.exists():
                rec["data"]["job"] = provenance.fingerprint_files([synth], follow=False)
    if json.dumps(rec, sort_keys=True) != before or stored(store, spec.name) is None:
        save(store, spec, rec)
    return rec
