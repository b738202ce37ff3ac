"""The batch script runs under `set -euo pipefail`: a pipe into a reader that stops early
(`| head -n 1`) kills the writer with SIGPIPE once its output outgrows the pipe buffer, and
pipefail then aborts the script (a 1,024-node job failed 12 times in 20 at its MASTER_ADDR
line). The template takes the first host from the whole list instead; no rendered script
pipes into an early-stopping reader; a failing Slurm client in the requeue is one line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from olmoctl.core.launch import specs
from olmoctl.core.launch.render import render
from tests.unit.test_host_requeue import _requeue_function

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 60
HOSTS = 100_000
RUNS = 20
# scontrol show hostnames for a huge allocation: nid000001 ... nid100000, one per line
# (about 1 MB, far beyond a 64 KiB pipe buffer).
SCONTROL = f"""#!/bin/bash
if [ "$1 $2" = "show hostnames" ]; then exec seq -f 'nid%06g' 1 {HOSTS}; fi
exit 1
"""
# A pipe into a reader that may exit before its writer is done.
EARLY_READER = re.compile(
    r"\|\s*(head\b|grep\s+(-\w*[qm]|--quiet|--silent|--max-count)|sed\s+(-n\s+)?'?\d*q"
    r"|awk\b[^|\n]*\bexit\b|read\b|\{\s*read\b)"
)


def _stub_bin(tmp_path: Path, body: str = SCONTROL) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "scontrol").write_text(body)
    (bin_dir / "scontrol").chmod(0o755)
    return bin_dir


def _master_addr_lines(script: str) -> str:
    """The rendered lines that set MASTER_ADDR (up to its export)."""
    lines = script.splitlines()
    end = lines.index("export MASTER_ADDR")
    start = next(i for i in range(end) if "scontrol show hostnames" in lines[i])
    return "\n".join(lines[start : end + 1]) + "\n"


def _run_many(code: str, bin_dir: Path) -> list[subprocess.CompletedProcess[str]]:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_NODELIST": f"nid[000001-{HOSTS}]"}
    script = "set -euo pipefail\n" + code + 'echo "MASTER_ADDR=$MASTER_ADDR"\n'
    argv = ["bash", "-c", script]
    return [
        subprocess.run(argv, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S)
        for _ in range(RUNS)
    ]


def test_master_addr_survives_a_huge_node_list(tmp_path: Path, user_env: Path) -> None:
    code = _master_addr_lines(render(specs.resolve("tiny", "dev", nodes=2)))
    assert "scontrol show hostnames" in code and "| head" not in code
    runs = _run_many(code, _stub_bin(tmp_path))
    failed = [(r.returncode, r.stderr) for r in runs if r.returncode != 0]
    assert not failed, f"{len(failed)}/{RUNS} aborted: {failed[0]}"
    assert {r.stdout for r in runs} == {"MASTER_ADDR=nid000001\n"}


def test_the_stub_reproduces_the_sigpipe_abort(tmp_path: Path) -> None:
    """The old line, same stub: the test above would catch the defect coming back."""
    old = 'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"\n'
    runs = _run_many(old, _stub_bin(tmp_path))
    assert any(r.returncode == 141 for r in runs), [r.returncode for r in runs]


def test_a_failing_scontrol_is_one_line_and_an_abort(tmp_path: Path, user_env: Path) -> None:
    code = _master_addr_lines(render(specs.resolve("tiny", "dev", nodes=2)))
    bin_dir = _stub_bin(tmp_path, "#!/bin/bash\necho 'scontrol: error: boom' >&2\nexit 1\n")
    res = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + code + "echo reached\n"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_NODELIST": "n[1-2]"},
        capture_output=True, text=True, timeout=HANG_GUARD_S,
    )  # fmt: skip
    assert res.returncode == 1 and "reached" not in res.stdout
    assert "olmoctl: scontrol show hostnames n[1-2] failed" in res.stderr


def _rendered() -> list[tuple[str, str]]:
    """Every golden script (test_golden checks each is what render() gives) and the
    template itself."""
    found = [(p.name, p.read_text()) for p in sorted((REPO / "tests" / "golden").glob("*.sh"))]
    template = REPO / "templates" / "sbatch.sh.j2"
    return [*found, (template.name, template.read_text())]


@pytest.mark.parametrize(("name", "text"), _rendered(), ids=[n for n, _ in _rendered()])
def test_no_pipe_into_a_reader_that_stops_early(name: str, text: str) -> None:
    code = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    bad = [ln.strip() for ln in code if EARLY_READER.search(ln)]
    assert not bad, f"{name}: a pipe into a reader that may stop early (SIGPIPE + pipefail)"


def test_spare_node_scripts_too(user_env: Path) -> None:
    """The burn-in part with spares (not in the golden files' defaults) is clean as well."""
    text = render(specs.resolve("tiny", "dev", nodes=1, spare_nodes=1))
    assert "olmoctl_use" in text
    code = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    assert not [ln for ln in code if EARLY_READER.search(ln)]


def test_requeue_goes_on_when_scontrol_cannot_show_the_job(tmp_path: Path, user_env: Path) -> None:
    """`scontrol -o show job` failing inside requeue_from_host (set -e, pipefail): the
    requeue stands, one line says the exclusion was not added, the script goes on."""
    log = tmp_path / "scontrol.log"
    bin_dir = _stub_bin(
        tmp_path,
        f'#!/bin/bash\necho "$*" >>{log}\n[ "$1" = -o ] && exit 1\nexit 0\n',
    )
    fn = _requeue_function(render(specs.resolve("tiny", "dev", nodes=2)))
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", fn + 'requeue_from_host "node5"\necho reached\n'],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_ID": "77"},
        capture_output=True, text=True, timeout=HANG_GUARD_S,
    )  # fmt: skip
    assert (res.returncode, res.stdout) == (0, "reached\n"), res.stderr
    assert "could not read job 77 to keep it off node5" in res.stderr
    assert log.read_text().splitlines() == ["requeue 77", "-o show job 77"]
