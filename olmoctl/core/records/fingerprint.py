"""Fingerprints a run's record is built from and compared by: text hashes, the config hash,
the data a job of a spec reads (as seen from this machine). The code a record names is
olmoctl.schemas.record.Record.code()."""

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
    """The token files as the job resolves them (olmoctl.train.data.tokens.resolve_paths)."""
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


def config_sha256(spec: RunSpec) -> str:
    """What is trained where: recipe, cluster and node count (not the run's name, folder or
    how the overrides were spelled), so a faithful `launch --from` has the same hash."""
    what = spec.model_dump(mode="json", include={"recipe", "cluster", "nodes"})
    return sha256_text(json.dumps(what, sort_keys=True))
