"""container.runtime -> the script's words (core/launch/containers.py), one runtime at a time, as
rendered by the template; the stub runs of every runtime are in test_shell_injection.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoctl.core.launch import specs
from olmoctl.core.launch.render import render


def _script(runtime: str, **container: object) -> str:
    c = {
        "runtime": runtime,
        "image": "/img/x.sif",
        "binds": ["/data", "/a:/b:ro"],
        "env": {"LD_LIBRARY_PATH": "/opt/lib:$LD_LIBRARY_PATH"},
        **container,
    }
    overrides = [f"cluster.container={c}", "cluster.burnin.enabled=false"]  # one srun
    return render(specs.resolve("tiny", "dev", nodes=2, overrides=overrides))


def _block(script: str) -> str:
    """From srun to the task command."""
    return script[script.index("srun \\") : script.index("step_pid=$!")]


@pytest.mark.parametrize("runtime", ["singularity", "apptainer"])
def test_singularity_and_apptainer(user_env: Path, runtime: str) -> None:
    s = _script(runtime)
    prefix = {"singularity": "SINGULARITYENV_", "apptainer": "APPTAINERENV_"}[runtime]
    assert f'export {prefix}LD_LIBRARY_PATH="/opt/lib:$LD_LIBRARY_PATH"' in s
    assert (
        f'  {runtime} exec \\\n    -B "/data" \\\n    -B "/a:/b:ro" \\\n    "/img/x.sif" \\\n'
        "  python -u -m submitit.core._submit" in _block(s)
    )


def test_bwrap_binds_pairs_sets_env_and_keeps_its_monitor_alive(user_env: Path) -> None:
    block = _block(_script("bwrap", image="/rootfs", exec_args=["--ro-bind", "/x", "/y"]))
    assert "  env --ignore-signal=USR2,TERM bwrap \\\n" in block
    assert '    --ro-bind "/rootfs" / \\\n' in block
    assert '    --bind "/data" "/data" \\\n    --ro-bind "/a" "/b" \\\n' in block
    assert '    --setenv LD_LIBRARY_PATH "/opt/lib:$LD_LIBRARY_PATH" \\\n' in block
    assert '    "--ro-bind" "/x" "/y" \\\n' in block  # one line per option and its values
    assert block.endswith(
        "    -- env --default-signal=USR2,TERM \\\n  python -u -m submitit.core._submit "
        + block.rsplit("_submit ", 1)[1]
    )


def test_podman_names_what_passes_and_binds_in_full(user_env: Path) -> None:
    s = _script("podman")
    block = _block(s)
    assert "  podman run --rm --network=host --ipc=host \\\n" in block
    for name in ("'SLURM_*'", "'OLMOCTL_*'", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS"):
        assert f"    --env {name} \\\n" in block
    assert '    --env "LD_LIBRARY_PATH=/opt/lib:$LD_LIBRARY_PATH" \\\n' in block
    assert '    -v "/data:/data" \\\n    -v "/a:/b:ro" \\\n    "/img/x.sif" \\\n' in block
    assert "export LD_LIBRARY_PATH" not in s


def test_pyxis_is_srun_flags_not_a_prefix(user_env: Path) -> None:
    s = _script("pyxis", image="nvcr.io#nvidia/pytorch:24.01-py3")
    block = _block(s)
    assert '  "--container-image=nvcr.io#nvidia/pytorch:24.01-py3" \\\n' in block
    assert '  "--container-mounts=/data:/data,/a:/b:ro" \\\n' in block
    assert "  --container-env=OMP_NUM_THREADS,LD_LIBRARY_PATH \\\n" in block
    assert "--kill-on-bad-exit=1 \\\n" in block.split("--container-env")[1]  # still srun's
    assert 'export LD_LIBRARY_PATH="/opt/lib:$LD_LIBRARY_PATH"' in s
    assert "exec" not in block
