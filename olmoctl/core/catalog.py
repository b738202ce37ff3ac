"""Find, load and validate cluster profiles and recipes; resolve a run spec from them."""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from olmoctl import paths
from olmoctl.core import overrides as ov
from olmoctl.core.yamlio import explain, load_yaml_mapping, suggest
from olmoctl.errors import UsageError
from olmoctl.schemas import ClusterProfile, Recipe, RunSpec
from olmoctl.schemas.run import RUN_NAME

ACCOUNT_ENV_VARS = ("OLMOCTL_ACCOUNT", "SBATCH_ACCOUNT")
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    source: str  # "shipped", "user" or "path"


def _is_path(ref: str) -> bool:
    return "/" in ref or ref.endswith(_SUFFIXES)


def available(kind: str) -> dict[str, Entry]:
    """Name -> entry for `clusters` or `recipes`; the user's own shadow shipped ones."""
    found: dict[str, Entry] = {}
    for source, folder in (("shipped", paths.data_dir(kind)), ("user", paths.user_dir(kind))):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.suffix in _SUFFIXES and p.is_file():
                found[p.stem] = Entry(p.stem, p, source)
    return found


def find(kind: str, ref: str) -> Entry:
    if _is_path(ref):
        p = Path(ref).expanduser()
        if not p.is_file():
            raise UsageError(f"{kind[:-1]} file {ref!r} does not exist")
        return Entry(p.stem, p, "path")
    entries = available(kind)
    if ref not in entries:
        names = sorted(entries)
        hint = suggest(ref, names) or f"; valid: {', '.join(names)}"
        raise UsageError(f"unknown {kind[:-1]} {ref!r}{hint}")
    return entries[ref]


def _validate(model: type[BaseModel], data: dict[str, Any], where: str, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UsageError(explain(e, model, where, prefix)) from None


def load_recipe(ref: str) -> Recipe:
    entry = find("recipes", ref)
    return _validate(Recipe, load_yaml_mapping(entry.path), str(entry.path))


def load_cluster(ref: str) -> ClusterProfile:
    entry = find("clusters", ref)
    return _validate(ClusterProfile, load_yaml_mapping(entry.path), str(entry.path))


def _expand(value: str, account: str | None, user: str) -> str:
    value = value.replace("{user}", user)
    if account is not None:
        value = value.replace("{account}", account)
    return value


def _fill_account(cluster_data: dict[str, Any], name: str, explicit: bool) -> None:
    if cluster_data.get("account"):
        return
    for var in ACCOUNT_ENV_VARS:
        if os.environ.get(var):
            cluster_data["account"] = os.environ[var]
            return
    if cluster_data.get("account_required") and not explicit:
        raise UsageError(
            f"cluster {name!r} needs a Slurm account: pass -o cluster.account=ACCOUNT "
            f"(e.g. project_465000000) or set {ACCOUNT_ENV_VARS[0]}"
        )


def default_name(recipe: str, cluster: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{recipe}-{cluster}")


def resolve(
    recipe_ref: str,
    cluster_ref: str,
    *,
    nodes: int = 1,
    name: str | None = None,
    time: str | None = None,
    overrides: list[str] | None = None,
    exclude_nodes: list[str] | None = None,
) -> RunSpec:
    """Recipe + cluster + overrides + nodes -> a validated, frozen RunSpec."""
    overrides = list(overrides or [])
    r_entry, c_entry = find("recipes", recipe_ref), find("clusters", cluster_ref)
    r_raw = load_yaml_mapping(r_entry.path)
    c_raw = load_yaml_mapping(c_entry.path)
    # The files themselves must be valid before overrides are blamed for anything.
    _validate(Recipe, r_raw, str(r_entry.path))
    _validate(ClusterProfile, c_raw, str(c_entry.path))
    r_data, c_data = ov.apply(r_raw, c_raw, overrides)
    where = "-o " + " -o ".join(overrides) if overrides else None
    recipe = _validate(Recipe, r_data, where or str(r_entry.path))
    _fill_account(c_data, c_entry.name, explicit=False)
    cluster = _validate(ClusterProfile, c_data, where or str(c_entry.path), ov.CLUSTER_PREFIX)

    if nodes < 1:
        raise UsageError(f"--nodes must be at least 1, got {nodes}")
    if name is None:
        name = default_name(recipe.name, cluster.name)
    if not re.fullmatch(RUN_NAME, name):
        raise UsageError(
            f"run name {name!r} is not valid: use 1-64 letters, digits and _.- "
            "(starting with a letter or digit)"
        )
    for node in exclude_nodes or []:
        if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+", node):
            raise UsageError(f"node name {node!r} is not valid")

    user = (cluster.ssh.user if cluster.ssh and cluster.ssh.user else None) or getpass.getuser()
    updates: dict[str, Any] = {
        "runs_root": _expand(cluster.runs_root, cluster.account, user),
        "data_root": _expand(cluster.data_root, cluster.account, user),
    }
    if cluster.container is not None:
        updates["container"] = cluster.container.model_copy(
            update={
                "image": _expand(cluster.container.image, cluster.account, user),
                "binds": [_expand(b, cluster.account, user) for b in cluster.container.binds],
            }
        )
    if cluster.ssh is None:
        updates["runs_root"] = os.path.expanduser(updates["runs_root"])
        updates["data_root"] = os.path.expanduser(updates["data_root"])
    elif any(updates[k].startswith("~") for k in ("runs_root", "data_root")):
        # `~` is the login node's home: ask the remote olmoctl (this command's one connection)
        from olmoctl.backends.ssh import remote_home

        home = remote_home(cluster.ssh)
        for k in ("runs_root", "data_root"):
            if updates[k] == "~" or updates[k].startswith("~/"):
                updates[k] = home.rstrip("/") + updates[k][1:]
    cluster = cluster.model_copy(update=updates)
    run_dir = f"{cluster.runs_root.rstrip('/')}/{name}"

    data = {
        "name": name,
        "recipe": recipe,
        "cluster": cluster,
        "nodes": nodes,
        "time": time or cluster.default_time,
        "overrides": overrides,
        "exclude_nodes": list(exclude_nodes or []),
        "run_dir": run_dir,
    }
    try:
        return RunSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if loc == "time":
            msg = f"--time {time!r} is not a Slurm time; use HH:MM:SS or D-HH:MM:SS"
        raise UsageError(msg) from None
