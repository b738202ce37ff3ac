"""The burn-in's verdict file reaches the batch script (node names for srun --nodelist and
scontrol ExcNodeList): the rendered script, run under bash with stubs (shell_stubs.py) whose
burn-in step writes a given verdict, uses a valid one and never runs what a hostile one holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.shell_stubs import Ran, Sandbox, olmoctl, sandbox_home

# The burn-in step writes $STUB_VERDICT (printf %b: \n for newlines) to the verdict file;
# any other python call is logged with MASTER_ADDR. srun and scontrol log their arguments.
_PYTHON = (
    'case "$*" in *olmoctl.train.burnin*)\n'
    '  printf "%b" "$STUB_VERDICT" >"$OLMOCTL_BURNIN_VERDICT"; exit 0 ;;\n'
    "esac\n"
    'printf "%s MASTER_ADDR=%s\\n" "$*" "$MASTER_ADDR" >>"$STUB_LOG"\n'
)
_SRUN = (
    'printf "srun %s\\n" "$*" >>"$STUB_SRUN"\n'
    'while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done\n'
    'exec "$@"\n'
)
_SCONTROL = (
    'printf "scontrol %s\\n" "$*" >>"$STUB_SRUN"\n'
    'if [ "${1:-}" = show ] && [ "${2:-}" = hostnames ]; then tr , "\\n" <<<"$3"; fi\n'
    # As Slurm reports a job whose script asked `#SBATCH --exclude=...`.
    'if [ "${1:-}" = -o ] && [ "${3:-}" = job ]; then\n'
    '  ex="$(sed -n "s/^#SBATCH --exclude=//p" "$STUB_SCRIPT")"\n'
    '  echo "JobId=$4 NodeList=node1,node2,node3 ExcNodeList=${ex:-(null)} Features=(null)"\n'
    "fi\n"
)


@pytest.fixture
def box(tmp_path: Path, user_env: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    sandbox = sandbox_home(tmp_path, monkeypatch)
    for name, body in (("python", _PYTHON), ("srun", _SRUN), ("scontrol", _SCONTROL)):
        (sandbox.bin / name).write_text("#!/bin/bash\n" + body)
    (sandbox.cwd / "node7").write_text("")  # a file a glob in a verdict could expand to
    return sandbox


def _script(*extra: str) -> str:
    res = olmoctl("render", "tiny", "-c", "dev", "-N", "2", "--spare-nodes", "1", *extra)
    assert res.code == 0, res.err
    return res.out


def _run(box: Sandbox, script: str, verdict: str) -> tuple[Ran, list[str]]:
    log = box.root / "srun.log"
    log.write_text("")
    submitted = box.root / "submitted.sh"
    submitted.write_text(script)
    env = {"STUB_VERDICT": verdict, "STUB_SRUN": str(log), "STUB_SCRIPT": str(submitted)}
    ran = box.run(script, env=env)
    return ran, log.read_text().splitlines()


def _training_srun(calls: list[str]) -> str:
    (line,) = [c for c in calls if c.startswith("srun") and "submitit" in c]
    return line


def test_a_valid_verdict_picks_the_nodes_and_rank_0s_host(box: Sandbox) -> None:
    ran, calls = _run(box, _script(), r"action=train\nuse=node1,node3\nexclude=node2\n")
    assert ran.code == 0 and not ran.pwned, ran.err
    assert "--nodes=2 --ntasks=2 --nodelist=node1,node3 " in _training_srun(calls)
    (train,) = ran.python_calls
    assert train.endswith("MASTER_ADDR=node1")
    assert "training on node1,node3" in ran.out


def test_requeue_excludes_the_bad_nodes_and_the_recorded_ones(box: Sandbox) -> None:
    from olmoctl.store import Store

    store = Store()
    with store.tx() as tx:
        tx.node_failure("dev", "node9", "NODE_FAIL earlier")
    store.close()
    ran, calls = _run(box, _script(), r"action=requeue\nuse=\nexclude=node2,node4\n")
    assert ran.code == 0 and not ran.pwned, ran.err
    assert "scontrol requeue 4242" in calls
    assert "scontrol update JobId=4242 ExcNodeList=node9,node2,node4" in calls
    assert ran.python_calls == []  # no training in this incarnation


def test_no_requeue_where_the_partition_could_not_hold_the_job_without_the_node(
    box: Sandbox,
) -> None:
    sinfo = box.bin / "sinfo"
    sinfo.write_text("#!/bin/bash\necho 3\n")  # a 3-node partition: none to spare
    sinfo.chmod(0o755)
    ran, calls = _run(box, _script(), r"action=requeue\nuse=\nexclude=node2\n")
    assert ran.code == 0 and "too few nodes" in ran.err, ran.err
    assert not [c for c in calls if c.startswith(("scontrol requeue", "scontrol update"))]
    assert "--nodelist" not in _training_srun(calls) and len(ran.python_calls) == 1


def test_fail_stops_before_training(box: Sandbox) -> None:
    ran, _ = _run(box, _script(), r"action=fail\nuse=\nexclude=node2\n")
    assert ran.code == 1 and ran.python_calls == [] and not ran.pwned


@pytest.mark.parametrize(
    "verdict",
    [
        r"action=train\nuse=node1,$(pwn)\n",
        r"action=train\nuse=node1,`pwn`\n",
        r"action=train\nuse=node1;pwn\n",
        r"action=train\nuse=node1 node3\n",
        r"action=train\nuse=node*,node1\n",
        r"action=train\nuse=-w,node1\n",
        r"action=train\nuse=node1\n",  # one node where the run needs two
        r"action=requeue\nexclude=node2$(pwn)\n",
        r"action=requeue\nexclude=node2,../../x\n",
        r"action=$(pwn)\nuse=node1,node3\n",
        r"action=train\nuse=node1,node3\\\nuse=$(pwn)\n",
        r"\x00\xff\n",
    ],
)
def test_a_hostile_verdict_is_never_used(box: Sandbox, verdict: str) -> None:
    ran, calls = _run(box, _script(), verdict)
    assert not ran.pwned, ran.err
    assert ran.code == 0, ran.err
    assert "--nodelist" not in _training_srun(calls)
    assert not [c for c in calls if c.startswith(("scontrol requeue", "scontrol update"))]
    assert "no usable verdict" in ran.err or "not a host name" in ran.err


def test_no_verdict_trains_on_the_allocation(box: Sandbox) -> None:
    ran, calls = _run(box, _script(), "")
    assert ran.code == 0 and "no usable verdict" in ran.err
    assert "--nodelist" not in _training_srun(calls)
    assert len(ran.python_calls) == 1


def test_burn_in_off_renders_no_burn_in(box: Sandbox) -> None:
    script = _script("--spare-nodes", "0", "-o", "cluster.burnin.enabled=false")
    assert "olmoctl.train.burnin" not in script and "--nodelist" not in script
    ran, _ = _run(box, script, "")
    assert ran.code == 0 and len(ran.python_calls) == 1
