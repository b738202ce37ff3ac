"""`olmoctl export RUN --format hf`: a run's checkpoint as a Hugging Face model directory.

Everything the user could get wrong (the run, the step, the output folder, a model HF cannot
express) is checked here before torch is imported; the tensor work is the job side's
(train/model/export_hf.py), run in this process on the machine that holds the checkpoint.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olmoctl import fileread
from olmoctl.core.records.fingerprint import local
from olmoctl.core.track.runs import find_run, spec_of
from olmoctl.errors import UsageError, shown_plain, user_path
from olmoctl.fileio import check_folder
from olmoctl.schemas import hf
from olmoctl.schemas.contract import COMPLETE_MARKER, checkpoints_root, parse_step_dir
from olmoctl.schemas.run import RunSpec
from olmoctl.store import Store

FORMATS = ("hf",)
MARKER_MAX = 64 * 1024  # a checkpoint's .complete marker: a few fields


@dataclass(frozen=True)
class ExportPlan:
    run: str
    spec: RunSpec
    step: int
    checkpoint: Path
    out: Path


def complete_steps(run_dir: str) -> dict[int, Path]:
    """step -> folder of every complete checkpoint (the marker is written last). Real
    folders only: a link in the run directory is not followed (olmoctl.fileread)."""
    root = checkpoints_root(run_dir)
    out: dict[int, Path] = {}
    if _real_dir(root):
        for p in root.iterdir():
            step = parse_step_dir(p.name)
            if step is not None and _real_dir(p) and _marker_step(p) == step:
                out[step] = p
    return dict(sorted(out.items()))


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _marker_step(path: Path) -> int | None:
    try:
        marker = json.loads(fileread.read_head(path / COMPLETE_MARKER, MARKER_MAX))
    except (OSError, ValueError, UsageError):  # missing, torn, or not a regular file
        return None
    return marker.get("step") if isinstance(marker, dict) else None


def plan(store: Store, run: str, *, fmt: str, step: int | None, out: str) -> ExportPlan:
    """Check everything; raise UsageError (one line, exit 2) on the first problem."""
    if fmt not in FORMATS:
        raise UsageError(
            f"--format {shown_plain(fmt)} is not supported; valid: {', '.join(FORMATS)}"
        )
    spec = spec_of(find_run(store, run))
    if not local(spec):
        raise UsageError(
            f"run {run} lives on {spec.cluster.ssh.host if spec.cluster.ssh else 'a remote host'}: "
            "export it there (olmoctl export on the login node), where its checkpoints are"
        )
    why = hf.refusals(spec.recipe.model)
    if why:
        raise UsageError(f"cannot export {run} as a transformers OLMo model: {'; '.join(why)}")
    steps = complete_steps(spec.run_dir)
    if not steps:
        raise UsageError(f"run {run} has no complete checkpoint yet (in {spec.run_dir})")
    if step is None:
        step = max(steps)
    elif step not in steps:
        have = ", ".join(str(s) for s in steps)
        raise UsageError(f"run {run} has no complete checkpoint at step {step}; complete: {have}")
    target = user_path(out, "--out")
    if os.path.lexists(target):
        raise UsageError(f"--out {shown_plain(out)} already exists; give a new directory")
    # Before torch loads: a name or place the OS refuses (too long, /proc, /sys, a file...).
    check_folder(target, "--out")
    return ExportPlan(run, spec, step, steps[step], target.absolute())


def export(
    p: ExportPlan,
    *,
    dtype: str,
    eos_token_id: int | None,
    pad_token_id: int | None,
) -> dict[str, Any]:
    """Write the model directory (train/model/export_hf.py: complete or absent)."""
    from olmoctl.train.model import export_hf

    eos, pad = hf.default_token_ids(p.spec.recipe.model, p.spec.recipe.data.synthetic)
    summary = export_hf.export(
        p.checkpoint,
        p.spec.recipe.model,
        p.out,
        dtype=dtype,
        eos_token_id=eos if eos_token_id is None else eos_token_id,
        pad_token_id=pad if pad_token_id is None else pad_token_id,
        provenance={
            "run": p.run,
            "step": p.step,
            "recipe": p.spec.recipe.name,
            "cluster": p.spec.cluster.name,
        },
    )
    return {"run": p.run, "step": p.step, **summary}
