"""`python -m olmoctl.train.burnin.preflight RUN_DIR/spec.json`: the job side of `olmoctl doctor`.

Every rank runs the checks (train/burnin/preflight_checks.py) where the real run would, prints one
line per check to its log and writes its report to RUN_DIR/preflight/rank-R.json (schemas/
preflight.py): first after the local checks, then again after the distributed one, so that
a collective that hangs still leaves the rest behind. Exit 0 when every check of this rank
passed, 1 when one failed, 2 on bad input. Torch is imported by a check, not at the top:
an image without it still reports why.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

from olmoctl.errors import OlmoctlError
from olmoctl.fileio import atomic_write
from olmoctl.schemas import preflight as pf
from olmoctl.schemas.cluster import ClusterProfile
from olmoctl.schemas.preflight import Check, RankReport
from olmoctl.train.burnin import nccl_log
from olmoctl.train.burnin import preflight_checks as checks

# The all-reduce waits at most this long for the other ranks (a rank that never starts
# fails the check instead of holding the job to its time limit).
DIST_TIMEOUT_S = 300


def _identity() -> tuple[int, int, int]:
    """(rank, world size, local rank) from srun or torchrun, without torch."""
    env = os.environ
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and "RANK" not in env:
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0))
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def _nodes() -> int:
    """How many nodes this step spans (Slurm's word; 1 outside Slurm)."""
    for var in ("SLURM_STEP_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES"):
        value = os.environ.get(var, "")
        if value.isascii() and value.isdigit():
            return int(value)
    return 1


def _debug_nccl(log: Path) -> None:
    """NCCL's (RCCL's) own account of its transport and NICs, into `log` (NCCL-ENV:
    NCCL_DEBUG, NCCL_DEBUG_SUBSYS, NCCL_DEBUG_FILE; read when NCCL initialises)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    os.environ.update(NCCL_DEBUG="INFO", NCCL_DEBUG_SUBSYS="INIT,NET", NCCL_DEBUG_FILE=str(log))


def transport(backend: str, log: Path, nodes: int) -> Check:
    """Which network NCCL used and through which NICs, from its debug output; a job over
    more than one node that fell back to TCP sockets fails (issue 22 items 3, 4)."""
    if backend != "nccl":
        return Check(name=pf.TRANSPORT, ok=True, skipped=True, detail=f"{backend}: no NCCL")
    try:
        use = nccl_log.parse(log.read_text(errors="replace"))
    except OSError as e:
        return Check(name=pf.TRANSPORT, ok=False, detail=f"no NCCL debug output: {e}")
    if not use.network:
        return Check(name=pf.TRANSPORT, ok=False, detail="NCCL named no network in its output")
    if use.socket and nodes > 1:
        why = (
            f"NCCL fell back to TCP sockets across {nodes} nodes: the IB transport or the "
            "network plugin did not load (set NCCL_NET so that it fails instead)"
        )
        return Check(name=pf.TRANSPORT, ok=False, value=use.text(), detail=why)
    return Check(name=pf.TRANSPORT, ok=True, value=use.text())


def distributed(
    cluster: ClusterProfile, torch: ModuleType | None, nccl_debug: Path | None = None
) -> tuple[Check, str]:
    """The profile's backend starts across every rank of the job; one all-reduce of ones.
    With `nccl_debug`, NCCL writes its debug output there. (check, backend used)."""
    if torch is None:
        return Check(name=pf.DISTRIBUTED, ok=False, detail="torch did not import"), ""
    backend = ""
    try:
        from olmoctl.train.runtime import distributed as d

        os.environ.setdefault("OLMOCTL_DIST_TIMEOUT_S", str(DIST_TIMEOUT_S))
        denv = d.detect()
        pref = "gloo" if cluster.distributed_backend == "gloo" else None
        device, backend = d.pick_device(denv, pref)
        if backend == "nccl" and nccl_debug is not None:
            _debug_nccl(nccl_debug)
        start = time.monotonic()
        d.init_process_group(denv, backend, device)
        x = torch.ones(1, device=device)
        torch.distributed.all_reduce(x)
        got = float(x.item())  # waits for the collective
        took = time.monotonic() - start
        d.shutdown()
    except Exception as e:
        return Check(name=pf.DISTRIBUTED, ok=False, detail=checks.error_text(e)), backend
    ok = got == denv.world_size
    value = f"{backend}, {denv.world_size} ranks, all_reduce={got:g} in {took:.2f} s"
    why = "" if ok else f"all_reduce of ones gave {got:g}, not {denv.world_size}"
    return Check(name=pf.DISTRIBUTED, ok=ok, value=value, detail=why), backend


def _write(run_dir: Path, report: RankReport) -> None:
    path = run_dir / pf.rank_file(report.rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, report.model_dump_json(indent=1) + "\n")


def _show(check: Check) -> None:
    word = "skip" if check.skipped else ("pass" if check.ok else "FAIL")
    tail = f"  ({check.detail})" if check.detail else ""
    print(f"preflight {word} {check.name}: {check.value}{tail}", flush=True)


def run(spec_json: str) -> int:
    from olmoctl.train.runtime.config import load_job_config

    job = load_job_config(spec_json)
    if job.cluster is None:
        raise OlmoctlError(f"{spec_json} is a recipe; the preflight needs a run's spec.json")
    cluster = job.cluster
    rank, world, local = _identity()
    node = socket.gethostname()
    imported, torch = checks.imports()
    gpus, device = checks.gpus(cluster, torch, local)
    local_checks = [imported, gpus, checks.network_plugin(cluster), *checks.env(cluster)]
    local_checks += checks.socket_ifname(node)
    if local == 0:  # once per node: thousands of ranks need not all probe Lustre
        local_checks += [checks.run_dir(job.run_dir, rank), checks.data(job.recipe, cluster)]
    for check in local_checks:  # the log has them even if the report cannot be written
        _show(check)
    report = RankReport(
        rank=rank, world_size=world, node=node, local_rank=local, device=device, checks=local_checks
    )
    _write(job.run_dir, report)
    log = job.run_dir / pf.nccl_log_file(rank)
    dist, backend = distributed(cluster, torch, log)
    _show(dist)
    done = [dist]
    if backend:  # the group started (or tried to): what NCCL said it used
        done.append(transport(backend, log, _nodes()))
        _show(done[-1])
    report = report.model_copy(update={"checks": [*local_checks, *done], "done": True})
    _write(job.run_dir, report)
    return 0 if all(c.ok for c in report.checks) else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m olmoctl.train.burnin.preflight RUN_DIR/spec.json", file=sys.stderr)
        return 2
    try:
        return run(args[0])
    except OlmoctlError as e:
        print(f"preflight: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the report could not be written: the run directory is the problem
        print(f"preflight FAIL {pf.RUN_DIR}: cannot write the report: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
