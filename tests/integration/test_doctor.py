"""`olmoctl doctor` against the real local Slurm cluster: the dev profile passes (two nodes,
a gloo all-reduce across them); a profile with a broken network setting fails and names the
check. Each is one short job (~10-20 s on an idle machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import REPO, DevCluster, Olmoctl

pytestmark = pytest.mark.slurm


def _lines(out: str) -> dict[str, str]:
    """check name -> PASS/FAIL/skip from the text output."""
    found = {}
    for line in out.splitlines():
        word, _, rest = line.partition("  ")
        if word in ("PASS", "FAIL", "skip"):
            found[rest.strip().split("  ")[0]] = word
    return found


def test_dev_cluster_passes(olmoctl: Olmoctl, dev_cluster: DevCluster) -> None:
    res = olmoctl("doctor", "-c", "dev", "-o", olmoctl.root)
    assert res.returncode == 0, res.stdout + res.stderr
    job_id = res.stdout.split("job ")[1].split()[0]
    dev_cluster.submitted.append(int(job_id))
    lines = _lines(res.stdout)
    assert lines["ranks"] == lines["import"] == lines["distributed"] == "PASS", res.stdout
    assert lines["run_dir"] == lines["env OMP_NUM_THREADS"] == "PASS"
    assert lines["gpus"] == lines["network_plugin"] == "skip"  # a CPU profile, no plugin
    assert "gloo, 2 ranks, all_reduce=2 " in res.stdout
    assert res.stdout.splitlines()[-1] == "doctor: all checks passed"
    assert dev_cluster.sacct_state(int(job_id)) == "COMPLETED"
    # Both nodes took part: two reports, from two different hosts.
    run_dir = Path(res.stdout.split("run dir ")[1].splitlines()[0])
    nodes = {json.loads(p.read_text())["node"] for p in (run_dir / "preflight").glob("rank-*")}
    assert len(nodes) == 2, nodes


def test_broken_profile_names_the_broken_checks(
    olmoctl: Olmoctl, dev_cluster: DevCluster, tmp_path: Path
) -> None:
    """The dev profile with LUMI's network settings: the plugin is not on these nodes and
    no interface is called hsn*; everything else still passes."""
    data = yaml.safe_load((REPO / "clusters" / "dev.yaml").read_text())
    data["network_plugin"] = "/opt/cray/lib64/librccl-net.so"
    data["env"]["NCCL_SOCKET_IFNAME"] = "hsn0,hsn1,hsn2,hsn3"
    profile = tmp_path / "dev-broken.yaml"
    profile.write_text(yaml.safe_dump(data))

    res = olmoctl("doctor", "-c", str(profile), "-o", olmoctl.root, "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    report = json.loads(res.stdout)
    dev_cluster.submitted.append(int(report["job_id"]))
    failed = {c["name"]: c for c in report["checks"] if not c["ok"]}
    assert set(failed) == {"network_plugin", "socket_ifname"}, report["checks"]
    assert "librccl-net.so" in failed["network_plugin"]["detail"]
    assert "-> none" in failed["socket_ifname"]["value"]
    assert "rank 0 on node" in failed["socket_ifname"]["detail"]
    passed = {c["name"] for c in report["checks"] if c["ok"]}
    assert {"ranks", "import", "distributed", "env NCCL_SOCKET_IFNAME"} <= passed
