"""The one run-spec builder: recipe + cluster profile (from the catalog, or as a run recorded
them) + `-o` overrides + nodes/name/time/exclusions -> a frozen, validated RunSpec.

    SpecConfig.from_catalog("tiny", "dev", overrides=[...]).build()    # launch, render, sweep
    SpecConfig.from_spec(recorded, overrides=[...]).build()            # launch --from, --diff
    SpecConfig.from_spec(recorded, same_run=True, ...).build()         # resume, watch

Every path validates the same way, so an error reads the same whichever command hit it.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from olmoctl.backends.registry import allocates_nodes
from olmoctl.core.launch import catalog, names
from olmoctl.core.launch import overrides as ov
from olmoctl.core.launch.yamlio import load_yaml_mapping
from olmoctl.errors import UsageError, shown
from olmoctl.schemas import ClusterProfile, Recipe, RunSpec
from olmoctl.schemas.batch import batch_problem
from olmoctl.schemas.bounds import parse_time, time_problem
from olmoctl.schemas.errors import validate
from olmoctl.schemas.run import RUN_NAME
from olmoctl.schemas.shellsafe import check_host, check_name, check_user, inline

if TYPE_CHECKING:
    from olmoctl.store import Store

ACCOUNT_ENV_VARS = ("OLMOCTL_ACCOUNT", "SBATCH_ACCOUNT")
_USER_ENV_VARS = ("LOGNAME", "USER", "LNAME", "USERNAME")  # getpass.getuser()'s order
RECORDED = "recorded spec"  # where a recorded run's recipe and cluster come from, in errors


@dataclass(frozen=True)
class SpecConfig:
    """Everything a RunSpec is made of; `build()` makes it. Change a field with `replace`."""

    recipe: Mapping[str, Any]  # the recipe as plain data: a file's contents, or as recorded
    cluster: Mapping[str, Any]
    recipe_origin: str  # a file path, or RECORDED: what an error in the data is blamed on
    cluster_origin: str
    cluster_ref: str  # the cluster as the user named it
    nodes: int = 1
    spare_nodes: int | None = None  # None: the profile's burnin.spare_nodes
    name: str | None = None  # None: base_name, else RECIPE-CLUSTER
    base_name: str | None = None
    time: str | None = None  # None: the cluster's default_time
    overrides: tuple[str, ...] = ()
    recorded_overrides: tuple[str, ...] = ()  # kept in front of `overrides` in the spec
    exclude_nodes: tuple[str, ...] = ()
    # The next attempt of the run that recorded the data (resume, watch): its run directory
    # and paths stay as recorded, and no account is taken from the environment.
    run_dir: str | None = None

    @classmethod
    def from_catalog(cls, recipe_ref: str, cluster_ref: str, **fields: Any) -> SpecConfig:
        """A recipe and a cluster profile by name (shipped or the user's) or path."""
        r_entry = catalog.find("recipes", recipe_ref)
        c_entry = catalog.find("clusters", cluster_ref)
        return cls(
            recipe=load_yaml_mapping(r_entry.path, "recipe file"),
            cluster=load_yaml_mapping(c_entry.path, "cluster file"),
            recipe_origin=str(r_entry.path),
            cluster_origin=str(c_entry.path),
            cluster_ref=c_entry.name,
            **_tuples(fields),
        )

    @classmethod
    def from_spec(cls, src: RunSpec, *, same_run: bool = False, **fields: Any) -> SpecConfig:
        """`src`'s recipe and cluster exactly as recorded (never the files as they are now),
        its nodes, time and name unless given; new overrides go after the recorded ones.
        `same_run`: a new attempt of `src` itself, in its run directory."""
        base: dict[str, Any] = {
            "nodes": src.nodes,
            "spare_nodes": src.spare_nodes,
            "time": src.time,
            "base_name": src.name,
        }
        if same_run:
            base.update(name=src.name, run_dir=src.run_dir)
        given = {k: v for k, v in fields.items() if v is not None}
        return cls(
            recipe=src.recipe.model_dump(mode="json"),
            cluster=src.cluster.model_dump(mode="json"),
            recipe_origin=RECORDED,
            cluster_origin=RECORDED,
            cluster_ref=src.cluster.name,
            recorded_overrides=tuple(src.overrides),
            **_tuples({**base, **given}),
        )

    def replace(self, **changes: Any) -> SpecConfig:
        return dataclasses.replace(self, **_tuples(changes))

    @property
    def new_run(self) -> bool:
        return self.run_dir is None

    def validated(self, *, fill_account: bool = False) -> tuple[Recipe, ClusterProfile]:
        """Recipe and cluster with the overrides applied, each validated (no node count,
        name or time yet: `plan` uses this alone)."""
        # The data must be valid before overrides are blamed for anything.
        validate(Recipe, self.recipe, self.recipe_origin)
        validate(ClusterProfile, self.cluster, self.cluster_origin)
        overrides = list(self.overrides)
        r_data, c_data = ov.apply(dict(self.recipe), dict(self.cluster), overrides)
        where = overrides_where(overrides) or None
        recipe = validate(Recipe, r_data, where or self.recipe_origin)
        if fill_account:
            _fill_account(c_data, self.cluster_ref)
        cluster = validate(ClusterProfile, c_data, where or self.cluster_origin, ov.CLUSTER_PREFIX)
        return recipe, cluster

    def build(self) -> RunSpec:
        """The frozen, validated RunSpec."""
        recipe, cluster = self.validated(fill_account=self.new_run)
        if self.nodes < 1:
            raise UsageError(f"--nodes must be at least 1, got {self.nodes}")
        spare = self.spare_nodes
        if spare is None:  # the profile's default, where a burn-in can pick among spares
            on = cluster.burnin.enabled and allocates_nodes(cluster.scheduler)
            spare = cluster.burnin.spare_nodes if on else 0
        name = next(
            (n for n in (self.name, self.base_name) if n is not None),
            catalog.default_name(recipe.name, cluster.name),
        )
        if not re.fullmatch(RUN_NAME, name):
            raise UsageError(
                f"run name {shown(name)} is not valid: use 1-64 letters, digits and _.- "
                "(starting with a letter or digit)"
            )
        for node in self.exclude_nodes:
            try:
                check_host(node, "node name")
            except ValueError as e:
                raise UsageError(str(e)) from None
        if self.time is not None and (problem := time_problem(self.time)) is not None:
            raise UsageError(f"--time {shown(self.time)} {problem}")
        t = recipe.train
        # Also the run spec's own check; here first, so that the fixes are not cut short.
        problem = batch_problem(
            t.global_batch_size, t.micro_batch_size, self.nodes, cluster.tasks_per_node,
            cluster.max_nodes,
        )  # fmt: skip
        if problem is not None and self.nodes <= cluster.max_nodes:
            raise UsageError(problem)
        if self.new_run:
            cluster = _expand_paths(cluster)
        run_dir = self.run_dir or f"{cluster.runs_root.rstrip('/')}/{name}"
        data = {
            "name": name,
            "recipe": recipe,
            "cluster": cluster,
            "nodes": self.nodes,
            "spare_nodes": spare,
            "time": self.time or default_time(cluster, self.nodes + spare),
            "overrides": [*self.recorded_overrides, *self.overrides],
            "exclude_nodes": list(self.exclude_nodes),
            "run_dir": run_dir,
        }
        return validate(RunSpec, data)


def default_time(cluster: ClusterProfile, nodes: int) -> str:
    """The site's limit for this node count where the profile has one (time_limits, within
    max_time): a job of that size may run that long, and a shorter --time is the user's
    choice (issue 22 item 5: Frontier's 128 nodes get bin 4's 6 h, not 2 h); else the
    profile's default_time."""
    rule = cluster.time_limit_for(nodes)
    if rule is None:
        return cluster.default_time
    if parse_time(rule.max_time) > cluster.max_time_s:
        return cluster.max_time
    return rule.max_time


def overrides_where(overrides: list[str]) -> str:
    """`-o A -o B` as an error names them, on one line (see shellsafe.inline)."""
    return " ".join(f"-o {inline(o)}" for o in overrides)


def resolve(recipe_ref: str, cluster_ref: str, **fields: Any) -> RunSpec:
    """Recipe + cluster by name or path (+ nodes, name, time, overrides...) -> RunSpec."""
    return SpecConfig.from_catalog(recipe_ref, cluster_ref, **fields).build()


def load_spec_file(path: str | os.PathLike[str]) -> RunSpec:
    """A run's spec.json as launch wrote it (or the run directory holding it), validated by
    the job's own reader: `render --from-spec` renders the very script of that submission."""
    from pathlib import Path

    from olmoctl.schemas import contract as rd
    from olmoctl.train.runtime.config import load_run_spec

    p = Path(path)
    return load_run_spec(p / rd.SPEC_FILE if p.is_dir() else p)


def for_new_run(
    store: Store, config: SpecConfig, spec: RunSpec | None = None, *, existing_ok: bool = False
) -> RunSpec:
    """The spec of a new run: with the name given, refused if a run (or, on this machine, a
    run directory) has it, unless `existing_ok` (render shows what it would be); with none,
    under the first free name from the default. `spec`: config's spec, when built already."""
    spec = spec or config.build()
    if config.name is None:
        free = names.free_name(store, spec.name, spec.cluster.runs_root)
        return spec if free == spec.name else config.replace(name=free).build()
    if not existing_ok:
        names.check_new(store, spec)
    return spec


def _tuples(fields: dict[str, Any]) -> dict[str, Any]:
    """Lists given for the sequence fields, as tuples (the config is frozen)."""
    seqs = ("overrides", "recorded_overrides", "exclude_nodes")
    return {k: tuple(v or ()) if k in seqs else v for k, v in fields.items()}


def _fill_account(cluster_data: dict[str, Any], cluster_ref: str) -> None:
    if cluster_data.get("account"):
        return
    for var in ACCOUNT_ENV_VARS:
        value = os.environ.get(var)
        if value:
            # Checked here, so a bad value is blamed on the variable, not the profile.
            try:
                check_name(value, f"Slurm account from {var}")
            except ValueError as e:
                raise UsageError(str(e)) from None
            cluster_data["account"] = value
            return
    if cluster_data.get("account_required"):
        raise UsageError(
            f"cluster {shown(cluster_ref)} needs a Slurm account: pass -o cluster.account=ACCOUNT "
            f"(e.g. project_465000000) or set {ACCOUNT_ENV_VARS[0]}"
        )


def _expand(value: str, account: str | None, user: str) -> str:
    value = value.replace("{user}", user)
    if account is not None:
        value = value.replace("{account}", account)
    return value


def _user(cluster: ClusterProfile) -> str:
    """Who {user} is: ssh.user, else getpass's answer ($LOGNAME, $USER, $LNAME, $USERNAME,
    then the password database), checked as a user name: it lands in paths in the script."""
    if cluster.ssh and cluster.ssh.user:
        return cluster.ssh.user
    source = next((f"${v}" for v in _USER_ENV_VARS if os.environ.get(v)), "the password database")
    user = getpass.getuser()
    try:
        return check_user(user, f"user name from {source}")
    except ValueError as e:
        raise UsageError(f"{{user}} in cluster {shown(cluster.name)}: {e}") from None


def _expand_paths(cluster: ClusterProfile) -> ClusterProfile:
    """{user}, {account} and `~` in the run/data roots and the container, filled in, and
    the profile validated again with them (a home or user name is input too)."""
    user = _user(cluster)
    updates: dict[str, Any] = {
        "runs_root": _expand(cluster.runs_root, cluster.account, user),
        "data_root": _expand(cluster.data_root, cluster.account, user),
    }
    if cluster.container is not None:
        updates["container"] = {
            **cluster.container.model_dump(),
            "image": _expand(cluster.container.image, cluster.account, user),
            "binds": [_expand(b, cluster.account, user) for b in cluster.container.binds],
        }
    if cluster.python_env is not None:
        pe = cluster.python_env.model_dump()
        for key in ("conda", "venv", "stage_tarball"):
            if pe[key] is not None:
                pe[key] = _expand(pe[key], cluster.account, user)
        updates["python_env"] = pe
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
    where = f"cluster {shown(cluster.name)} with {{user}}, {{account}} and ~ filled in"
    return validate(ClusterProfile, {**cluster.model_dump(), **updates}, where, ov.CLUSTER_PREFIX)
