"""The dev-container profile's container, on the real local Slurm: the very script olmoctl
renders for it, with a probe in the task slot. Inside, Slurm is out of reach (no working
client, no slurm.conf, no munge socket), the job's environment still arrives, the run
directory is writable and the rest read-only; the bare `dev` profile, probed the same way,
reaches all of it (so the probe can tell). The fault cases that run in this container are in
test_faults.py (time limit, preemption, node failure)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from olmoctl.core.launch import specs
from olmoctl.core.launch.render import render
from tests.integration.conftest import CLUSTER_DIR, DevCluster, Olmoctl

pytestmark = pytest.mark.slurm

MUNGE = CLUSTER_DIR / "run" / "munge" / "munge.socket.2"
PROBE = f"""
scontrol show config >/dev/null 2>&1; echo "scontrol=$?"
sbatch --version >/dev/null 2>&1; echo "sbatch=$?"
if [ -e "$SLURM_CONF" ]; then echo conf=visible; else echo conf=hidden; fi
if [ -S {shlex.quote(str(MUNGE))} ]; then echo munge=visible; else echo munge=hidden; fi
echo "job=$SLURM_JOB_ID run=$OLMOCTL_RUN_NAME master=$MASTER_ADDR"
touch "$OLMOCTL_RUN_DIR/probe.$SLURM_PROCID" && echo rundir=writable
if touch /usr/probe 2>/dev/null; then rm -f /usr/probe; echo root=writable; \
else echo root=readonly; fi
"""


def _probe(dev_cluster: DevCluster, olmoctl: Olmoctl, profile: str, tmp_path: Path) -> str:
    spec = specs.resolve("tiny", profile, nodes=2, overrides=[olmoctl.root], name=f"p-{profile}")
    logs = Path(spec.run_dir) / "logs"
    logs.mkdir(parents=True)  # as launch makes it: Slurm opens --output before the script runs
    script = tmp_path / f"{profile}.sh"
    script.write_text(render(spec, task_command="bash -c " + shlex.quote(PROBE)))
    job = dev_cluster.sbatch(str(script))
    assert dev_cluster.wait_job(job) == "COMPLETED", (logs / f"slurm-{job}.out").read_text()
    return "".join((logs / f"{job}-rank{r}.out").read_text() for r in (0, 1))


def test_the_container_has_no_slurm_but_the_job_environment(
    dev_cluster: DevCluster, olmoctl: Olmoctl, tmp_path: Path
) -> None:
    inside = _probe(dev_cluster, olmoctl, "dev-container", tmp_path)
    assert inside.count("scontrol=126") == 2, inside  # Permission denied: hidden
    assert inside.count("sbatch=126") == 2, inside
    assert inside.count("conf=hidden") == inside.count("munge=hidden") == 2, inside
    assert inside.count("run=p-dev-container master=node") == 2, inside
    assert inside.count("rundir=writable") == inside.count("root=readonly") == 2, inside

    bare = _probe(dev_cluster, olmoctl, "dev", tmp_path)
    assert bare.count("scontrol=0") == bare.count("conf=visible") == 2, bare
    assert bare.count("munge=visible") == 2, bare
