"""`olmoctl doctor`'s job side, `python -m olmoctl.train.burnin.preflight RUN_DIR/spec.json`,
as real processes: two ranks with srun's environment do the gloo all-reduce; a wrong variable, a
plugin that does not load, an interface the node lacks or a missing data file each fail
the check that names it."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from olmoctl.schemas import preflight as pf
from olmoctl.schemas.preflight import RankReport
from olmoctl.train.burnin import preflight_checks as checks
from tests.train.helpers import HANG_GUARD_S, PY, REPO, _base_env, free_port, tiny, write_spec


def _spec(run_dir: Path, cluster: dict[str, Any] | None = None, **recipe: Any) -> Path:
    path = write_spec(run_dir, tiny(**recipe))
    if cluster:
        data = json.loads(path.read_text())
        data["cluster"].update(cluster)
        path.write_text(json.dumps(data))
    return path


def _run(spec: Path, ranks: int = 1, env: dict[str, str] | None = None) -> list[int]:
    port = free_port()
    job_id = str(port - 20000 + 20000 * 7)  # the job's master port = 20000 + id % 20000
    procs = []
    for rank in range(ranks):
        e = _base_env({"OMP_NUM_THREADS": "1", **(env or {})})
        if ranks > 1:
            e.update(
                SLURM_JOB_ID=job_id, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
                SLURM_NTASKS=str(ranks), SLURM_NNODES="1", SLURM_JOB_NODELIST="localhost",
            )  # fmt: skip
        cmd = [PY, "-m", "olmoctl.train.burnin.preflight", str(spec)]
        procs.append(subprocess.Popen(cmd, env=e, cwd=REPO, stdout=subprocess.DEVNULL))
    return [p.wait(timeout=HANG_GUARD_S) for p in procs]


def _report(run_dir: Path, rank: int = 0) -> dict[str, pf.Check]:
    rep = RankReport.model_validate_json((run_dir / pf.rank_file(rank)).read_text())
    assert rep.done
    return {c.name: c for c in rep.checks}


def test_two_ranks_pass_and_all_reduce(tmp_path: Path) -> None:
    run_dir = tmp_path / "ok"
    spec = _spec(run_dir, {"env": {"OMP_NUM_THREADS": "1", "FI_X": "${OMP_NUM_THREADS}-a"}})
    assert _run(spec, ranks=2, env={"FI_X": "1-a"}) == [0, 0]
    for rank in (0, 1):
        got = _report(run_dir, rank)
        assert all(c.ok for c in got.values()), got
        assert got[pf.DISTRIBUTED].value.startswith("gloo, 2 ranks, all_reduce=2 ")
        assert got["env FI_X"].value == "1-a"
    assert pf.RUN_DIR in _report(run_dir, 0) and pf.RUN_DIR not in _report(run_dir, 1)


def test_a_variable_that_did_not_reach_the_job_fails_by_name(tmp_path: Path) -> None:
    run_dir = tmp_path / "env"
    spec = _spec(run_dir, {"env": {"NCCL_NET_GDR_LEVEL": "3", "OMP_NUM_THREADS": "1"}})
    assert _run(spec, env={"NCCL_NET_GDR_LEVEL": "PHB"}) == [1]
    got = _report(run_dir)
    bad = got["env NCCL_NET_GDR_LEVEL"]
    assert not bad.ok and bad.value == "PHB" and "'3'" in bad.detail
    assert [n for n, c in got.items() if not c.ok] == ["env NCCL_NET_GDR_LEVEL"]


def test_plugin_that_does_not_load_and_interface_that_is_not_there(tmp_path: Path) -> None:
    run_dir = tmp_path / "net"
    cluster = {"network_plugin": str(tmp_path / "nope" / "librccl-net.so")}
    spec = _spec(run_dir, cluster)
    assert _run(spec, env={"NCCL_SOCKET_IFNAME": "=hsn9"}) == [1]
    got = _report(run_dir)
    assert not got[pf.PLUGIN].ok and "No such file" in got[pf.PLUGIN].detail
    assert not got[pf.IFNAME].ok and "-> none" in got[pf.IFNAME].value
    assert got[pf.DISTRIBUTED].ok  # gloo does not read NCCL's variable


def test_a_plugin_that_loads_from_the_library_path_passes(tmp_path: Path) -> None:
    run_dir = tmp_path / "plugin"
    spec = _spec(run_dir, {"network_plugin": "libm.so.6"})  # any library the loader finds
    assert _run(spec) == [0]
    assert _report(run_dir)[pf.PLUGIN].value.endswith("/libm.so.6")


def test_data_files_are_read_and_a_missing_one_is_named(tmp_path: Path) -> None:
    tokens = tmp_path / "data" / "a.bin"
    tokens.parent.mkdir()
    np.arange(1000, dtype=np.uint16).tofile(tokens)
    run_dir = tmp_path / "data-ok"
    spec = _spec(run_dir, {"data_root": str(tokens.parent)}, **{"data.paths": ["a.bin"]})
    assert _run(spec) == [0]
    assert _report(run_dir)[pf.DATA].value == "1 file(s) readable, 0.00 GB"

    run_dir = tmp_path / "data-missing"
    spec = _spec(run_dir, **{"data.paths": [str(tmp_path / "gone.bin")]})
    assert _run(spec) == [1]
    bad = _report(run_dir)[pf.DATA]
    assert not bad.ok and bad.value.endswith("gone.bin") and "No such file" in bad.detail


def test_ifname_matching_follows_nccl_rules() -> None:
    ifaces = ["lo", "eth0", "hsn0", "hsn1", "docker0"]
    assert checks.ifname_matches("hsn", ifaces) == ["hsn0", "hsn1"]
    assert checks.ifname_matches("hsn0,hsn1,hsn2,hsn3", ifaces) == ["hsn0", "hsn1"]
    assert checks.ifname_matches("=hsn", ifaces) == []
    assert checks.ifname_matches("^lo,docker", ifaces) == ["eth0", "hsn0", "hsn1"]
    assert checks.ifname_matches("^=hsn0", ifaces) == ["lo", "eth0", "hsn1", "docker0"]
    lo = socket.if_nameindex()[0][1]
    assert checks.ifname_matches(lo, [n for _, n in socket.if_nameindex()]) == [lo]


def test_expand_fills_only_plain_references() -> None:
    env = {"A": "1", "B": "x"}
    assert checks.expand("$A:${B}:$C:/l", env) == "1:x::/l"


@pytest.mark.parametrize("argv", [[], ["a", "b"]])
def test_usage(argv: list[str]) -> None:
    from olmoctl.train.burnin.preflight import main

    assert main(argv) == 2
