"""The batch script's in-allocation restart (templates/restarts.sh.j2), run under bash with
stubs: a scontrol whose job shrinks when the stub training "loses" a node, a burn-in that
picks the first nodes of what is left, and a training step that follows a plan (lose a
node, fail on its own error, succeed). The real thing: tests/integration/test_faults.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.shell_stubs import Ran, Sandbox, olmoctl, sandbox_home

_PYTHON = r"""
case "$*" in *olmoctl.train.burnin*)
  IFS=, read -r a b _ <"$STUB_DIR/alloc"
  printf "action=train\nuse=%s,%s\n" "$a" "$b" >"$OLMOCTL_BURNIN_VERDICT"; exit 0 ;;
esac
n=$(( $(wc -l <"$STUB_DIR/trained") + 1 ))
echo "INC=$OLMOCTL_INCARNATION MASTER=$MASTER_ADDR NODES=$SLURM_JOB_NODELIST" >>"$STUB_DIR/trained"
what="$(sed -n "${n}p" "$STUB_DIR/plan")"
case "$what" in
  lose\ *) sed -i "s/\(^\|,\)${what#lose }\(,\|$\)/\1/; s/,$//; s/,,/,/" "$STUB_DIR/alloc"
          exit 1 ;;
  own) mkdir -p "$OLMOCTL_RUN_DIR/burnin"
       echo "ValueError" >"$OLMOCTL_RUN_DIR/burnin/$SLURM_JOB_ID-$OLMOCTL_INCARNATION.no-restart"
       exit 1 ;;
  *) exit 0 ;;
esac
"""
_SCONTROL = r"""
echo "scontrol $*" >>"$STUB_DIR/calls"
case "$1 ${2:-} ${3:-}" in
  "show hostnames "*) tr , '\n' <<<"$3" ;;
  "-o show job") echo "JobId=$4 ReqNodeList=(null) NodeList=$(cat "$STUB_DIR/alloc")" ;;
  "show config "*) printf "SlurmdTimeout           = 0 sec\nMessageTimeout          = 0 sec\n" ;;
esac
exit 0
"""
_SRUN = r"""
echo "srun $*" >>"$STUB_DIR/calls"
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
exec "$@"
"""


@pytest.fixture
def box(tmp_path: Path, user_env: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    sandbox = sandbox_home(tmp_path, monkeypatch)
    for name, body in (("python", _PYTHON), ("scontrol", _SCONTROL), ("srun", _SRUN),
                       ("sinfo", "echo 10\n"), ("sleep", "exit 0\n")):  # fmt: skip
        (sandbox.bin / name).write_text("#!/bin/bash\n" + body)
        (sandbox.bin / name).chmod(0o755)
    return sandbox


def _run(box: Sandbox, plan: list[str], *extra: str, alloc: str = "node1,node2,node3") -> Ran:
    res = olmoctl("render", "tiny", "-c", "dev", "-N", "2", "--spare-nodes", "1", *extra)
    assert res.code == 0, res.err
    stub = box.root / "stub"
    stub.mkdir(exist_ok=True)
    (stub / "alloc").write_text(alloc + "\n")
    (stub / "plan").write_text("".join(f"{p}\n" for p in plan))
    (stub / "trained").write_text("")
    (stub / "calls").write_text("")
    return box.run(res.out, env={"STUB_DIR": str(stub), "SLURM_JOB_NODELIST": alloc})


def _trained(box: Sandbox) -> list[str]:
    return (box.root / "stub" / "trained").read_text().splitlines()


def _calls(box: Sandbox) -> list[str]:
    return (box.root / "stub" / "calls").read_text().splitlines()


def test_the_script_keeps_its_allocation_only_with_spares(user_env: Path) -> None:
    spares = olmoctl("render", "tiny", "-c", "dev", "-N", "2", "--spare-nodes", "1").out
    assert "#SBATCH --no-kill" in spares and "olmoctl_restart_after" in spares
    plain = olmoctl("render", "tiny", "-c", "dev", "-N", "2").out
    assert "--no-kill" not in plain and "olmoctl_restart_after" not in plain
    off = olmoctl("render", "tiny", "-c", "dev", "-N", "2", "--spare-nodes", "1",
                  "-o", "cluster.burnin.restarts_in_allocation=0").out  # fmt: skip
    assert "--no-kill" not in off


def test_a_lost_node_restarts_training_on_the_spare(box: Sandbox) -> None:
    ran = _run(box, ["lose node2", "ok"])
    assert ran.code == 0 and not ran.pwned, ran.err
    first, second = _trained(box)
    assert first == "INC=0 MASTER=node1 NODES=node1,node2,node3"
    assert second == "INC=1 MASTER=node1 NODES=node1,node3"  # the next incarnation's index
    assert "lost node2: training starts again in job 4242" in ran.out
    trains = [c for c in _calls(box) if c.startswith("srun") and "submitit" in c]
    assert "--nodelist=node1,node2 " in trains[0] and "--nodelist=node1,node3 " in trains[1]
    assert all("--overlap" in c for c in _calls(box) if c.startswith("srun"))
    restarts = next(Path(box.root).rglob("4242.restarts"))
    assert restarts.read_text() == "1\n"  # a requeue of this job counts it in its index


def test_rank_0s_node_lost_moves_the_master(box: Sandbox) -> None:
    ran = _run(box, ["lose node1", "ok"], alloc="node1,node2,node3")
    assert ran.code == 0, ran.err
    assert _trained(box)[1] == "INC=1 MASTER=node2 NODES=node2,node3"


def test_the_jobs_own_error_is_not_restarted(box: Sandbox) -> None:
    ran = _run(box, ["own", "ok"])
    assert ran.code == 1 and len(_trained(box)) == 1
    assert "an error of its own" in ran.err


def test_too_few_nodes_left_ends_the_job_as_a_node_failure(box: Sandbox) -> None:
    """Not requeued: Slurm would requeue the shrunk job at its shrunk size (measured: pending
    for ever as BadConstraints). It ends, for watch / resume to submit whole again."""
    ran = _run(box, ["lose node2", "lose node3", "ok"])
    assert ran.code == 1, ran.err
    assert len(_trained(box)) == 2  # the second loss leaves one node of two needed
    assert "lost node3: 1 nodes left of 2; job 4242 ends here (NODE_FAIL)" in ran.err
    assert not [c for c in _calls(box) if c.startswith(("scontrol requeue", "scontrol update"))]


def test_restarts_are_capped(box: Sandbox) -> None:
    ran = _run(box, ["lose node2", "lose node3", "ok"],
               "-o", "cluster.burnin.restarts_in_allocation=1",
               alloc="node1,node2,node3,node4")  # fmt: skip
    assert ran.code == 1, ran.err
    assert len(_trained(box)) == 2
    assert "1 restarts in this allocation already" in ran.err and "ends here" in ran.err


def test_a_hostile_restarts_file_counts_as_none(box: Sandbox) -> None:
    res = olmoctl("render", "tiny", "-c", "dev", "-N", "2", "--spare-nodes", "1")
    line = next(ln for ln in res.out.splitlines() if ln.startswith("export OLMOCTL_RUN_DIR="))
    run_dir = Path(line.split("=", 1)[1].strip("'"))
    assert run_dir.is_absolute() and "'" not in str(run_dir)
    (run_dir / "burnin").mkdir(parents=True)
    (run_dir / "burnin" / "4242.restarts").write_text("$(pwn)\n")
    ran = _run(box, ["lose node2", "ok"])
    assert ran.code == 0 and not ran.pwned, ran.err
    assert [t.split()[0] for t in _trained(box)] == ["INC=0", "INC=1"]
