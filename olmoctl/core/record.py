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

import hashlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from olmoctl import provenance
from olmoctl.core import events as ev
from olmoctl.core.fileio import atomic_write
from olmoctl.core.store import Store
from olmoctl.schemas import RunSpec

RECORD_FILE = "record.json"
CODE_DIR = "code"  # RUN_DIR/code/<diff sha256 prefix>.diff: local changes at submission
FORMAT = 1
INDICES_FILE = "global_indices.npy"  # as olmoctl.train.data writes it
INDICES_META = "global_indices.json"
SYNTHETIC_FILE = "data/synthetic.npy"
SYNTHETIC_SOURCE = "olmoctl.train.corpus.generate_documents(400000, seed=0), byte tokens"
VERSION_KEYS = ("python", "torch", "numpy", "cuda", "rocm")
ATTEMPT_KEYS = (
    "attempt_no",
    "job_id",
    "state",
    "node_list",
    "submitted_at",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "first_step",
    "last_step",
)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def local(spec: RunSpec) -> bool:
    """The run directory and the data are on this machine's filesystem."""
    return spec.cluster.ssh is None


def data_paths(spec: RunSpec) -> list[Path]:
    """The token files as the job resolves them (olmoctl.train.data.resolve_paths)."""
    out = []
    root = os.path.expandvars(os.path.expanduser(spec.cluster.data_root))
    for p in spec.recipe.data.paths:
        path = Path(os.path.expandvars(os.path.expanduser(p)))
        if not path.is_absolute() and root:
            path = Path(root) / path
        out.append(path)
    return out


def data_fingerprint(spec: RunSpec) -> dict[str, Any] | None:
    """The data a job of `spec` would read, fingerprinted from here (None: synthetic, or
    not reachable from this machine)."""
    if not spec.recipe.data.paths or not local(spec):
        return None
    return provenance.fingerprint_files(data_paths(spec))


# ------------------------------------------------------------------------------ write
def read_file(run_dir: str | Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(run_dir) / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stored(store: Store, name: str) -> dict[str, Any] | None:
    row = (
        store.connect()
        .execute("SELECT record_json FROM run_records WHERE run_name = ?", (name,))
        .fetchone()
    )
    return json.loads(row["record_json"]) if row else None


def code_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The code the job ran (its newest `started` event), else what the launcher had; with
    the launcher's saved diff file when the job ran the same local changes."""
    env = rec.get("environment") or {}
    subs = rec.get("submissions") or []
    if not env.get("code"):
        return subs[-1]["code"] if subs else None
    code = dict(env["code"])
    git = code.get("git")
    if git and git.get("dirty"):
        for sub in subs:
            sgit = (sub.get("code") or {}).get("git") or {}
            if sgit.get("diff_sha256") == git.get("diff_sha256") and sgit.get("diff_file"):
                code["git"] = {**git, "diff_file": sgit["diff_file"]}
    return code


def save(store: Store, spec: RunSpec, rec: dict[str, Any], conn: Any = None) -> None:
    """record.json (atomically, when the run directory is here) + its index row."""
    rec["updated_at"] = time.time()
    text = json.dumps(rec, indent=2, sort_keys=False) + "\n"
    run_dir = Path(spec.run_dir)
    if local(spec) and run_dir.is_dir():
        atomic_write(run_dir / RECORD_FILE, text)
    code = code_of(rec) or {}
    git = code.get("git") or {}
    data = (rec.get("data") or {}).get("job") or (rec.get("data") or {}).get("at_launch") or {}
    row = (
        spec.name,
        (rec.get("from") or {}).get("run"),
        code.get("version"),
        git.get("commit"),
        None if not git else int(bool(git.get("dirty"))),
        code.get("source_sha256"),
        rec.get("seed"),
        data.get("sha256"),
        (rec.get("global_indices") or {}).get("sha256"),
        json.dumps(rec),
        rec["updated_at"],
    )
    sql = (
        "INSERT INTO run_records (run_name, from_run, olmoctl_version, git_commit, git_dirty, "
        "source_sha256, seed, data_sha256, indices_sha256, record_json, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_name) DO UPDATE SET "
        "from_run=excluded.from_run, olmoctl_version=excluded.olmoctl_version, "
        "git_commit=excluded.git_commit, git_dirty=excluded.git_dirty, "
        "source_sha256=excluded.source_sha256, seed=excluded.seed, "
        "data_sha256=excluded.data_sha256, indices_sha256=excluded.indices_sha256, "
        "record_json=excluded.record_json, updated_at=excluded.updated_at"
    )
    if conn is not None:
        conn.execute(sql, row)
    else:
        with store.tx() as c:
            c.execute(sql, row)


def config_sha256(spec: RunSpec) -> str:
    """What is trained where: recipe, cluster and node count (not the run's name, folder or
    how the overrides were spelled), so a faithful `launch --from` has the same hash."""
    what = spec.model_dump(mode="json", include={"recipe", "cluster", "nodes"})
    return sha256_text(json.dumps(what, sort_keys=True))


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
            "script_file": f"scripts/attempt-{attempt_no}.sh",
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
def _env_of(started: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": started.get("job_id"),
        "started_ts": started.get("ts"),
        "start_step": started.get("start_step"),
        "nodes": started.get("nodes"),
        "world_size": started.get("world_size"),
        "versions": started.get("versions"),
        "devices": started.get("devices"),
        "code": started.get("code"),
    }


def refresh(store: Store, row: Any) -> dict[str, Any]:
    """Bring the record up to date with the store (attempts) and the run directory (the
    job's `started` events, global_indices.npy); save it if anything changed."""
    spec = RunSpec.model_validate(json.loads(row["spec_json"]))
    rec = stored(store, spec.name) or (read_file(spec.run_dir) if local(spec) else None)
    if rec is None:  # a run from before records existed: what can still be known
        rec = new_record(spec)
        rec["partial"] = "recorded after the fact: no launcher code version or launch data"
    before = json.dumps(rec, sort_keys=True)
    starts = []
    if local(spec):
        starts = [e for e in ev.read_events(spec.run_dir, None) if e.get("event") == "started"]
    subs = {s["attempt"]: s for s in rec.get("submissions", [])}
    attempts = []
    rows = store.attempts(spec.name)
    for i, a in enumerate(rows):
        item: dict[str, Any] = {k: a[k] for k in ATTEMPT_KEYS if k in a.keys()}  # noqa: SIM118
        script = a["script"]
        item["script_file"] = f"scripts/attempt-{a['attempt_no']}.sh"
        item["script_sha256"] = sha256_text(script) if script else None
        sub = subs.get(a["attempt_no"])
        if sub is not None:
            item["launcher_code"] = {
                k: v for k, v in (sub.get("code") or {}).items() if k != "diff"
            }
        mine = [s for s in starts if a["job_id"] and str(s.get("job_id")) == str(a["job_id"])]
        if not mine and a["submitted_at"]:  # job ids spelled otherwise (array tasks): by time
            until = rows[i + 1]["submitted_at"] if i + 1 < len(rows) else None
            mine = [
                s
                for s in starts
                if s.get("ts", 0) >= a["submitted_at"] and (until is None or s["ts"] < until)
            ]
        item["env"] = [_env_of(s) for s in mine]
        attempts.append(item)
    rec["attempts"] = attempts
    if starts:
        last = starts[-1]
        rec["environment"] = _env_of(last)
        if last.get("data"):
            rec["data"]["job"] = last["data"]
        if last.get("global_indices"):
            rec["global_indices"] = dict(last["global_indices"])
    if local(spec):
        indices = Path(spec.run_dir) / INDICES_FILE
        gi = rec.get("global_indices") or {}
        if indices.exists() and (not gi or gi.get("size") != indices.stat().st_size):
            gi = provenance.fingerprint_file(indices)  # extended since the job reported it
        if gi:
            try:
                meta = json.loads((Path(spec.run_dir) / INDICES_META).read_text())
                gi.update({k: meta[k] for k in ("seed", "num_instances", "seq_len", "length")})
            except (OSError, ValueError, KeyError):
                pass
            rec["global_indices"] = gi
        if rec["data"].get("synthetic") and rec["data"].get("job") is None:
            synth = Path(spec.run_dir) / SYNTHETIC_FILE
            if synth.exists():
                rec["data"]["job"] = provenance.fingerprint_files([synth])
    if json.dumps(rec, sort_keys=True) != before or stored(store, spec.name) is None:
        save(store, spec, rec)
    return rec


# ------------------------------------------------------------------------------ compare
PROBE = r"""
import json, platform, importlib.metadata as m
out = {"versions": {"python": platform.python_version()}}
for pkg in ("torch", "numpy"):
    try:
        out["versions"][pkg] = m.version(pkg)
    except Exception:
        out["versions"][pkg] = None
try:
    from olmoctl import provenance
    out["code"] = provenance.code_version()
except Exception:
    out["code"] = None
print(json.dumps(out))
"""


def probe_now(spec: RunSpec) -> tuple[dict[str, Any] | None, str | None]:
    """The Python, package versions and olmoctl code a job of `spec` would run with now,
    asked of the cluster's own `python` (no torch import: package metadata only).
    (None, why) where that cannot be asked from here."""
    c = spec.cluster
    if c.ssh is not None:
        return None, f"cluster {c.name} is remote"
    if c.container is not None or c.modules:
        return None, f"cluster {c.name} runs the job in a container or with modules"
    env = {**os.environ, **c.env}
    try:
        p = subprocess.run(
            [c.python, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env
        )
        return json.loads(p.stdout.strip().splitlines()[-1]), None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None, f"{c.python!r} on this machine did not answer"


def _short(v: Any) -> str:
    if v is None:
        return "-"
    s = str(v)
    return s[:12] if len(s) == 64 and all(ch in "0123456789abcdef" for ch in s) else s


def _code_items(code: dict[str, Any] | None) -> dict[str, Any]:
    if not code:
        return {}
    git = code.get("git") or {}
    items = {
        "olmoctl version": code.get("version"),
        "olmoctl source sha256": code.get("source_sha256"),
    }
    if git:
        items["olmoctl git commit"] = git.get("commit")
        items["olmoctl local changes (diff sha256)"] = git.get("diff_sha256")
    return items


def _data_diffs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    of, nf = old.get("files") or [], new.get("files") or []
    if [f["name"] for f in of] != [f["name"] for f in nf]:
        names = ", ".join(f["name"] for f in of) or "-"
        out.append(f"data files: {names} -> {', '.join(f['name'] for f in nf) or '-'}")
    by_name = {f["name"]: f for f in nf}
    for f in of:
        g = by_name.get(f["name"])
        if g is None:
            continue
        if g.get("error"):
            out.append(f"data file {f['name']}: now unreadable ({g['error']})")
        elif (f.get("size"), f.get("sha256")) != (g.get("size"), g.get("sha256")):
            out.append(
                f"data file {f['name']}: size {f.get('size')} -> {g.get('size')}, "
                f"sha256 {_short(f.get('sha256'))} -> {_short(g.get('sha256'))} "
                f"({g.get('method')})"
            )
    return out


def differences(rec: dict[str, Any], spec: RunSpec) -> tuple[list[str], list[str]]:
    """(differences, notes): every difference in code version, package versions and data
    fingerprint between a run's record and what a job of `spec` would get now; notes say
    what could not be compared."""
    diffs: list[str] = []
    notes: list[str] = []
    now, why = probe_now(spec)
    old_code = code_of(rec)
    if now is None:
        notes.append(f"code and package versions not compared: {why}")
    else:
        if now.get("code") is None:
            notes.append("olmoctl is not importable by the cluster's python")
        old_items, new_items = _code_items(old_code), _code_items(now.get("code"))
        for key, old in old_items.items():
            if key in new_items and new_items[key] != old:
                diffs.append(f"code: {key} {_short(old)} -> {_short(new_items[key])}")
        env = rec.get("environment") or {}
        old_v = env.get("versions") or {}
        if not old_v:
            notes.append("the recorded run never started: no package versions to compare")
        for key in VERSION_KEYS:
            new_v = (now.get("versions") or {}).get(key, "?")
            if key in old_v and new_v != "?" and old_v[key] != new_v:
                diffs.append(f"packages: {key} {old_v[key]} -> {new_v}")
        notes.append("CUDA/ROCm runtime and devices are known once the new job starts")
    data = rec.get("data") or {}
    if data.get("synthetic") and not spec.recipe.data.paths:
        notes.append("data: the synthetic corpus is generated by the job (covered by the code)")
    else:
        old_fp = data.get("job") or data.get("at_launch")
        new_fp = data_fingerprint(spec)
        if data.get("synthetic"):
            diffs.append("data: synthetic corpus -> files " + ", ".join(spec.recipe.data.paths))
        elif not spec.recipe.data.paths:
            diffs.append("data: files -> synthetic corpus")
        elif old_fp is None:
            notes.append("data not compared: the record holds no data fingerprint")
        elif new_fp is None:
            notes.append(f"data not compared: cluster {spec.cluster.name} is remote")
        else:
            diffs += _data_diffs(old_fp, new_fp)
    return diffs, notes


def env_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differences between two records' code, environment and data as their jobs saw them
    (for a run made with `launch --from`, once it has started)."""
    out = []
    ca, cb = _code_items(code_of(a)), _code_items(code_of(b))
    out += [f"code: {k} {_short(v)} -> {_short(cb[k])}" for k, v in ca.items() if cb.get(k) != v]
    va = (a.get("environment") or {}).get("versions") or {}
    vb = (b.get("environment") or {}).get("versions") or {}
    out += [f"packages: {k} {va[k]} -> {vb.get(k)}" for k in va if va[k] != vb.get(k)]
    da = (a.get("environment") or {}).get("devices") or {}
    db = (b.get("environment") or {}).get("devices") or {}
    if da and db and da != db:
        out.append(
            f"devices: {da.get('count')} x {da.get('name')} -> {db.get('count')} x {db.get('name')}"
        )
    fa = (a.get("data") or {}).get("job") or (a.get("data") or {}).get("at_launch")
    fb = (b.get("data") or {}).get("job") or (b.get("data") or {}).get("at_launch")
    if fa and fb:
        out += _data_diffs(fa, fb)
    ga, gb = a.get("global_indices") or {}, b.get("global_indices") or {}
    if ga.get("sha256") and gb.get("sha256") and ga["sha256"] != gb["sha256"]:
        out.append(
            f"data order: global_indices.npy sha256 {_short(ga['sha256'])} -> "
            f"{_short(gb['sha256'])}"
        )
    return out
