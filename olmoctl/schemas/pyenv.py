"""How a rank gets its Python: a cluster profile's `python_env` (issue 22 item 1).

A batch job starts in a fresh shell: a conda env or venv activated on the login node is not
active there (OLCF's Frontier PyTorch guide: load miniforge3 and `source activate ENV` in
the batch script), so a bare `python` finds the base env, without torch. The batch script
(templates/sbatch.sh.j2) renders this before the burn-in, training and doctor steps; srun
passes the result to every rank. `launch`/`render` refuse a Slurm profile with a bare
`python` and no python_env (core/launch/checks.py: python_problem)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from olmoctl.schemas.base import Schema
from olmoctl.schemas.shellsafe import Expandable, Word

# Where a staged env is unpacked: Frontier's node-local NVMe, mounted at /mnt/bb/$USER in a
# job that asks for it with --constraint=nvme (Frontier User Guide, "NVMe Usage").
STAGE_DIR = "/mnt/bb/$USER/olmoctl-env"


class PythonEnv(Schema):
    # `module load` before the activation, after the profile's `modules` (e.g. miniforge3).
    modules: list[Word] = Field(default_factory=list)
    # A conda env to activate (`source activate ENV`: a name or a prefix path).
    conda: Expandable | None = None
    # A virtual environment directory to activate (`source VENV/bin/activate`).
    venv: Expandable | None = None
    # Nothing to activate, and the profile says why: `image` (the container image puts its
    # Python first on PATH) or `submitter` (the shell that runs `olmoctl launch` has it on
    # PATH and sbatch passes that environment on: Slurm's default --export=ALL; the dev
    # cluster's profiles, launched from the checkout's .venv).
    provided_by: Literal["image", "submitter"] | None = None
    # OLCF's advice for start-up at scale: a conda-pack tarball of the `conda` env, copied to
    # every node's NVMe with sbcast, unpacked there (conda-unpack) and activated instead of
    # the env on the shared filesystem, so thousands of ranks import from local disk rather
    # than all hitting Lustre's metadata servers (docs/clusters.md, "The ranks' Python").
    stage_tarball: Expandable | None = None

    @model_validator(mode="after")
    def _one_way(self) -> PythonEnv:
        ways = [k for k in ("conda", "venv", "provided_by") if getattr(self, k) is not None]
        if len(ways) > 1:
            raise ValueError(f"give one of conda, venv and provided_by, not {' and '.join(ways)}")
        if not ways and not self.modules:
            raise ValueError(
                "sets nothing up: give conda or venv (with modules to load first), or "
                "provided_by: image or submitter"
            )
        if self.stage_tarball is not None and self.conda is None:
            raise ValueError("stage_tarball is a conda-pack of the conda env: set conda too")
        if self.provided_by is not None and self.modules:
            raise ValueError(f"provided_by: {self.provided_by} loads nothing: drop modules")
        return self

    @property
    def activates(self) -> bool:
        """Whether the batch script does something on the host (module loads, activation)."""
        return bool(self.modules or self.conda or self.venv)

    @property
    def stage_dir(self) -> str:
        return STAGE_DIR
