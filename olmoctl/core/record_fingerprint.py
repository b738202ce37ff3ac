"""Fingerprints a run's record is built from and compared by: text hashes, the config hash,
the data a job of a spec reads (as seen from this machine), and the code a record names."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from olmoctl import provenance
from olmoctl.schemas import RunSpec


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


def config_sha256(spec: RunSpec) -> str:
    """What is trained where: recipe, cluster and node count (not the run's name, folder or
    how the overrides were spelled), so a faithful `launch --from` has the same hash."""
    what = spec.model_dump(mode="json", include={"recipe", "cluster", "nodes"})
    return sha256_text(json.dumps(what, sort_keys=True))
