"""Issue 22 items 1, 3, 4 (doctor's side): the all-reduce runs with NCCL's debug output on;
the transport and NICs each rank used are read from it, a multi-node check that fell back to
TCP sockets fails, and the interpreter and versions each node found are shown per node.
The log lines are NCCL's INFO format (NCCL user guide, NCCL_DEBUG; aws-ofi-nccl's NET/OFI
lines)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from olmoctl.core.doctor.report import fold
from olmoctl.schemas import preflight as pf
from olmoctl.schemas.preflight import Check, RankReport
from olmoctl.train.burnin import nccl_log
from olmoctl.train.burnin.preflight import _debug_nccl, transport

IB_LOG = """\
gpu001:1234:1234 [0] NCCL INFO Bootstrap : Using ib0:10.1.0.1<0>
gpu001:1234:1234 [0] NCCL INFO NET/Plugin: No plugin found (libnccl-net.so)
gpu001:1234:1301 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_3:1/IB [2]mlx5_4:1/RoCE \
; OOB ib0:10.1.0.1<0>
gpu001:1234:1301 [0] NCCL INFO Using network IB
gpu001:1234:1301 [0] NCCL INFO Channel 00/0 : 0[0] -> 8[0] [send] via NET/IB/0/GDRDMA
gpu001:1234:1301 [0] NCCL INFO Channel 01/0 : 0[0] -> 8[0] [send] via NET/IB/1/GDRDMA
gpu001:1234:1301 [0] NCCL INFO Channel 00/0 : 8[0] -> 0[0] [receive] via NET/IB/0/GDRDMA
"""
SOCKET_LOG = """\
nid001:99:99 [0] NCCL INFO NET/OFI Failed to initialize sendrecv protocol
nid001:99:99 [0] NCCL INFO NET/Plugin: Could not find: librccl-net.so
nid001:99:120 [0] NCCL INFO NET/Socket : Using [0]hsn0:10.2.0.1<0> [1]hsn1:10.2.0.2<0>
nid001:99:120 [0] NCCL INFO Using network Socket
nid001:99:120 [0] NCCL INFO Channel 00/0 : 0[0] -> 8[0] [send] via NET/Socket/1
"""
OFI_LOG = """\
nid002:7:7 [0] NCCL INFO NET/OFI Selected provider is cxi, fabric is cxi (found 4 nics)
nid002:7:7 [0] NCCL INFO Using network AWS Libfabric
nid002:7:30 [0] NCCL INFO Channel 00/0 : 0[0] -> 8[0] [send] via NET/AWS Libfabric/0/GDRDMA
"""


def test_ib_names_the_nics_this_ranks_channels_used() -> None:
    use = nccl_log.parse(IB_LOG)
    assert use.network == "IB" and not use.socket
    assert use.devices == ("mlx5_0:1/IB", "mlx5_3:1/IB", "mlx5_4:1/RoCE")
    assert use.used == ("mlx5_0:1/IB", "mlx5_3:1/IB")  # not the RoCE port it found
    assert use.text() == "IB via mlx5_0:1/IB, mlx5_3:1/IB"


def test_the_fallback_to_sockets_is_seen() -> None:
    use = nccl_log.parse(SOCKET_LOG)
    assert use.socket and use.text() == "Socket via hsn1:10.2.0.2<0>"


def test_the_ofi_plugin_says_its_provider() -> None:
    use = nccl_log.parse(OFI_LOG)
    assert use.network == "AWS Libfabric" and not use.socket
    assert use.text() == "AWS Libfabric (cxi, 4 nics)"


def _log(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nccl-rank-00000.log"
    path.write_text(text)
    return path


def test_sockets_across_nodes_fail(tmp_path: Path) -> None:
    check = transport("nccl", _log(tmp_path, SOCKET_LOG), nodes=2)
    assert not check.ok and check.name == pf.TRANSPORT
    assert "fell back to TCP sockets across 2 nodes" in check.detail
    assert "NCCL_NET" in check.detail


def test_sockets_on_one_node_pass_and_ib_passes(tmp_path: Path) -> None:
    assert transport("nccl", _log(tmp_path, SOCKET_LOG), nodes=1).ok
    check = transport("nccl", _log(tmp_path, IB_LOG), nodes=64)
    assert check.ok and check.value == "IB via mlx5_0:1/IB, mlx5_3:1/IB"


def test_no_output_fails_and_gloo_is_skipped(tmp_path: Path) -> None:
    assert not transport("nccl", tmp_path / "absent.log", nodes=2).ok
    assert not transport("nccl", _log(tmp_path, "nothing here\n"), nodes=2).ok
    gloo = transport("gloo", tmp_path / "absent.log", nodes=2)
    assert gloo.ok and gloo.skipped


def test_debug_output_is_turned_on_before_nccl_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("NCCL_DEBUG", "NCCL_DEBUG_SUBSYS", "NCCL_DEBUG_FILE"):
        monkeypatch.delenv(var, raising=False)
    log = tmp_path / "preflight" / "nccl-rank-00003.log"
    log.parent.mkdir()
    log.write_text(IB_LOG)  # a previous doctor's: never read as this one's
    _debug_nccl(log)
    assert os.environ["NCCL_DEBUG"] == "INFO"
    assert os.environ["NCCL_DEBUG_SUBSYS"] == "INIT,NET"
    assert os.environ["NCCL_DEBUG_FILE"] == str(log) and not log.exists()


def _report(rank: int, node: str, *checks: Check) -> RankReport:
    return RankReport(rank=rank, world_size=4, node=node, checks=list(checks), done=True)


def _imports(value: str) -> Check:
    return Check(name=pf.IMPORTS, ok=True, value=value)


def test_doctor_shows_what_each_node_found() -> None:
    env = "python /env/bin/python 3.11.9, torch 2.13.0, olmoctl 0.1.0, submitit 1.5.2"
    ib = Check(name=pf.TRANSPORT, ok=True, value="IB via mlx5_0:1/IB")
    ib2 = Check(name=pf.TRANSPORT, ok=True, value="IB via mlx5_1:1/IB")
    reports = {
        0: _report(0, "a", _imports(env), ib),
        1: _report(1, "a", _imports(env), ib2),
        2: _report(2, "b", _imports(env), ib),
        3: _report(3, "b", _imports(env), ib),
    }
    lines = {line.name: line for line in fold(reports, 4, 0)}
    assert lines[pf.IMPORTS].ok and lines[pf.IMPORTS].value == f"{env} (every node: 2)"
    assert lines[pf.TRANSPORT].ok
    assert lines[pf.TRANSPORT].value == (
        "IB via mlx5_0:1/IB on a and 1 more node(s); IB via mlx5_1:1/IB on a"
    )


def test_nodes_that_found_different_environments_fail() -> None:
    good = "python /env/bin/python 3.11.9, torch 2.13.0, olmoctl 0.1.0, submitit 1.5.2"
    base = "python /usr/bin/python3 3.11.2, torch 2.1.0, olmoctl 0.1.0, submitit 1.5.2"
    reports = {0: _report(0, "a", _imports(good)), 1: _report(1, "b", _imports(base))}
    line = next(ln for ln in fold(reports, 2, 0) if ln.name == pf.IMPORTS)
    assert not line.ok and line.detail == "the nodes found 2 different environments"
    assert line.value == f"{good} on a; {base} on b"
