"""Which backend a run's jobs answer to. The implementations are imported here, lazily (each
pulls in its own dependencies; startup stays light), so base.py needs none of them."""

from __future__ import annotations

import json
from typing import Any

from olmoctl.backends.base import Backend
from olmoctl.schemas import RunSpec


def backend_key(cluster: dict[str, Any]) -> str:
    """A cluster profile's (as JSON) backend: its scheduler, or "ssh:{...}" for a remote one."""
    if cluster.get("ssh"):
        return "ssh:" + json.dumps(cluster["ssh"], sort_keys=True)
    return str(cluster.get("scheduler", "slurm"))


def allocates_nodes(scheduler: str) -> bool:
    """Whether the scheduler gives one job several nodes that a batch script can steer with
    srun (Slurm, here or over ssh): a burn-in can choose among them, an all-reduce can cross
    them. The local executor runs every rank on this machine."""
    return scheduler != "local"


def backend_for(spec_or_key: RunSpec | str) -> Backend:
    """The backend of a spec, or of a backend_key(); a remote (ssh) cluster gets this
    command's one SSHBackend for its login node (olmoctl.backends.ssh)."""
    if isinstance(spec_or_key, str):
        key = spec_or_key
        if key.startswith("ssh:"):
            from olmoctl.backends.ssh import backend_for_ssh
            from olmoctl.schemas.cluster import SSHConfig

            return backend_for_ssh(SSHConfig.model_validate_json(key.removeprefix("ssh:")))
    else:
        if spec_or_key.cluster.ssh is not None:
            from olmoctl.backends.ssh import backend_for_ssh

            return backend_for_ssh(spec_or_key.cluster.ssh)
        key = spec_or_key.cluster.scheduler
    if key == "local":
        from olmoctl.backends.local import LocalBackend

        return LocalBackend()
    from olmoctl.backends.slurm import SlurmBackend

    return SlurmBackend()
