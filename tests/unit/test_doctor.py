"""`olmoctl doctor`, launcher side: the spec it submits, how the ranks' reports fold into one
line per check, and its bad input (exit 2, one line). The real job on the dev cluster:
tests/integration/test_doctor.py; the job side: tests/train/test_preflight.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoctl.core.doctor import job as doctor
from olmoctl.core.doctor.report import RANKS, fold
from olmoctl.schemas import preflight as pf
from olmoctl.schemas.preflight import Check, RankReport


def _rep(rank: int, node: str, *checks: Check, device: str = "", done: bool = True) -> RankReport:
    return RankReport(
        rank=rank, world_size=4, node=node, device=device, checks=list(checks), done=done
    )


def _ok(name: str, value: str = "v") -> Check:
    return Check(name=name, ok=True, value=value)


def test_a_check_fails_when_one_rank_fails_and_names_it() -> None:
    bad = Check(name=pf.IFNAME, ok=False, value="NCCL_SOCKET_IFNAME=hsn -> none", detail="no")
    reports = {
        0: _rep(0, "n1", _ok(pf.IMPORTS), _ok(pf.IFNAME), _ok(pf.DISTRIBUTED)),
        1: _rep(1, "n1", _ok(pf.IMPORTS), _ok(pf.IFNAME), _ok(pf.DISTRIBUTED)),
        2: _rep(2, "n2", _ok(pf.IMPORTS), bad, _ok(pf.DISTRIBUTED)),
        3: _rep(3, "n2", _ok(pf.IMPORTS), bad, _ok(pf.DISTRIBUTED)),
    }
    lines = {line.name: line for line in fold(reports, 4, 0)}
    assert list(lines) == [RANKS, pf.IMPORTS, pf.IFNAME, pf.DISTRIBUTED]
    assert lines[RANKS].ok and lines[RANKS].value == "4/4 reported"
    assert not lines[pf.IFNAME].ok
    assert lines[pf.IFNAME].detail == "rank 2 on n2: no (and 1 more rank(s))"
    assert lines[pf.IMPORTS].ok and lines[pf.DISTRIBUTED].ok


def test_missing_ranks_and_an_unfinished_all_reduce_fail() -> None:
    reports = {0: _rep(0, "n1", _ok(pf.IMPORTS), done=False)}
    why = {1: "its log ends: FATAL: container image not found"}
    lines = {line.name: line for line in fold(reports, 4, 0, why)}
    assert not lines[RANKS].ok and lines[RANKS].value == "1/4 reported"
    assert lines[RANKS].detail == (
        "rank 1 (and 2 more): no report; its log ends: FATAL: container image not found"
    )
    assert not lines[pf.DISTRIBUTED].ok
    assert "rank 0 on n1 never finished" in lines[pf.DISTRIBUTED].detail


def test_gpus_per_node_counts_the_distinct_devices_of_each_node() -> None:
    def reports(devices: dict[int, tuple[str, str]]) -> dict[int, RankReport]:
        return {
            r: _rep(r, node, _ok(pf.GPUS, "1 visible"), device=dev)
            for r, (node, dev) in devices.items()
        }

    good = reports({0: ("n1", "a"), 1: ("n1", "b"), 2: ("n2", "c"), 3: ("n2", "d")})
    (line,) = [ln for ln in fold(good, 4, 2) if ln.name == pf.GPUS]
    assert line.ok and line.value.startswith("2 per node")
    shared = reports({0: ("n1", "a"), 1: ("n1", "a"), 2: ("n2", "c"), 3: ("n2", "d")})
    (line,) = [ln for ln in fold(shared, 4, 2) if ln.name == pf.GPUS]
    assert not line.ok and "n1: its ranks use 1 distinct GPU(s)" in line.detail


def test_skipped_everywhere_is_a_pass_marked_skipped() -> None:
    skip = Check(name=pf.PLUGIN, ok=True, skipped=True, detail="the profile names none")
    lines = {ln.name: ln for ln in fold({0: _rep(0, "n1", skip)}, 1, 0)}
    line = lines[pf.PLUGIN]
    assert line.ok and line.skipped and line.detail == "the profile names none"
    # a report without the all-reduce (a job of another version): not taken for a pass
    assert not lines[pf.DISTRIBUTED].ok


def test_prepare_two_nodes_one_sample_per_rank(user_env: Path) -> None:
    spec = doctor.prepare(
        "tiny", "lumi", nodes=None, time_limit=None, overrides=["cluster.account=p1"]
    )
    assert spec.nodes == 2 and spec.world_size == 16
    assert spec.recipe.train.global_batch_size == 16  # tiny's 48 does not split over 16
    assert spec.time == "00:10:00" and spec.name.startswith("doctor-lumi-")
    assert spec.run_dir.startswith("/scratch/p1/alice/olmoctl/runs/doctor-lumi-")
    assert doctor.prepare("tiny", "local", nodes=None, time_limit=None, overrides=[]).nodes == 1


def test_the_script_is_a_real_runs_with_the_preflight_in_the_slot(user_env: Path) -> None:
    from olmoctl.backends.jobfiles import preflight_command, submitit_command
    from olmoctl.core.launch.render import render

    spec = doctor.prepare(
        "tiny", "lumi", nodes=2, time_limit=None, overrides=["cluster.account=p1"]
    )
    script = render(spec, task_command=preflight_command(spec))
    assert f"python -u -m olmoctl.train.burnin.preflight {spec.run_dir}/spec.json" in script
    full = render(spec).splitlines(keepends=True)
    hint = full[2:4]  # the re-render hint (`render` gives back run scripts, not this one)
    assert "--from-spec" in hint[0] and "".join(hint) not in script
    expected = "".join(full[:2] + full[4:])
    assert script.replace(preflight_command(spec), submitit_command(spec)) == expected
    # The same modules (the host's Slingshot libraries bound in) and fail-fast network.
    assert "module load lumi-aif-singularity-bindings" in script
    assert 'export NCCL_NET="AWS Libfabric"' in script


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["doctor", "-c", "nope"], "nope"),
        (["doctor", "-c", "dev", "--timeout", "0"], "--timeout"),
        (["doctor", "-c", "dev", "-N", "0"], "--nodes"),
        (["doctor", "-c", "dev", "-N", "99"], "limit of 8"),
        (["doctor", "-c", "lumi"], "needs a Slurm account"),
        (["doctor", "-c", "dev", "--time", "99:00:00"], "max time"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args: list[str], says: str) -> None:
    res = cli(*args)
    assert res.code == 2, (res.code, res.err)
    assert says in res.err and res.err.count("\n") == 1 and "Traceback" not in res.err


def test_over_ssh_it_points_at_the_login_node(cli, user_env: Path) -> None:
    res = cli("doctor", "-c", "dev", "-o", "cluster.ssh.host=login1", "-o", "cluster.runs_root=/r")
    assert res.code == 2 and "login node" in res.err, res.err
