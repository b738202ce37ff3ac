"""The resolved run spec: recipe + cluster + overrides + nodes, frozen and validated."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from olmoctl.errors import shown
from olmoctl.schemas.base import Schema
from olmoctl.schemas.batch import batch_problem
from olmoctl.schemas.bounds import Int, SlurmTime
from olmoctl.schemas.cluster import TIME_RE, ClusterProfile, parse_time
from olmoctl.schemas.recipe import Recipe
from olmoctl.schemas.shellsafe import Host

RUN_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def spares_refusal(c: ClusterProfile) -> str | None:
    """Why cluster `c` cannot hold spare nodes (they need the batch script's burn-in that
    picks among them); None when it can. RunSpec refuses, `plan` warns."""
    if c.scheduler == "slurm" and c.burnin.enabled:
        return None
    why = "is not a Slurm cluster" if c.scheduler != "slurm" else "has burn-in off"
    return (
        f"spare nodes need the burn-in that picks among them, and cluster "
        f"{shown(c.name)} {why} (cluster.burnin.enabled)"
    )


class RunSpec(Schema):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=RUN_NAME)
    recipe: Recipe
    cluster: ClusterProfile
    nodes: Int = Field(gt=0, le=1_000_000)
    # Extra nodes allocated and burned in; training runs on the best `nodes` of them.
    spare_nodes: Int = Field(default=0, ge=0, le=1_000_000)
    time: SlurmTime = Field(pattern=TIME_RE)
    # The -o overrides as the user typed them, in order (recorded for reproducibility).
    overrides: list[str] = Field(default_factory=list)
    # Slurm host names (#SBATCH --exclude=), read back from the store's node health.
    exclude_nodes: list[Host] = Field(default_factory=list)
    # Absolute, and plain characters only: it lands in #SBATCH lines, which are not shell.
    run_dir: str = Field(pattern=r"^/[A-Za-z0-9_./+@-]*$")

    @model_validator(mode="after")
    def _check(self) -> RunSpec:
        c = self.cluster
        if self.nodes > c.max_nodes:
            raise ValueError(
                f"nodes={self.nodes} is above cluster {shown(c.name)}'s limit of {c.max_nodes}"
            )
        if self.spare_nodes:
            if self.allocated_nodes > c.max_nodes:
                raise ValueError(
                    f"nodes={self.nodes} + spare_nodes={self.spare_nodes} is above cluster "
                    f"{shown(c.name)}'s limit of {c.max_nodes}"
                )
            if (refusal := spares_refusal(c)) is not None:
                raise ValueError(refusal)
        if parse_time(self.time) > c.max_time_s:
            raise ValueError(
                f"time {self.time} is above cluster {shown(c.name)}'s max time {c.max_time}"
            )
        t = self.recipe.train
        problem = batch_problem(
            t.global_batch_size, t.micro_batch_size, self.nodes, c.tasks_per_node, c.max_nodes
        )
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def allocated_nodes(self) -> int:
        """Nodes the job asks Slurm for: the training nodes and the spares."""
        return self.nodes + self.spare_nodes

    @property
    def world_size(self) -> int:
        return self.nodes * self.cluster.tasks_per_node

    @property
    def grad_accum_steps(self) -> int:
        t = self.recipe.train
        return t.global_batch_size // (self.world_size * t.micro_batch_size)
