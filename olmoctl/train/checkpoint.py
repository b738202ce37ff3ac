"""Checkpoints: torch.distributed.checkpoint (DCP) of the sharded model and optimizer, plus
the trainer state (step, tokens, data position, config hashes) and every rank's RNG state.

Layout (RUN_DIR/checkpoints/; names in olmoctl.schemas.contract, which the launcher reads too):
  step_00000010/
    .metadata, __R_0.distcp ...  DCP: model + optimizer, sharded, reshardable on load
    rng_00000.pt ...             RNG states of each rank (torch, cuda, numpy, python)
    trainer_state.json           step, tokens_seen, data position, hashes, world size
    .complete                    the marker, written LAST: JSON metadata (step, bytes, ...)
  .tmp-step_00000020/            a save in progress (or torn): never loaded

A save writes everything into .tmp-step_N, renames it to step_N (atomic), then writes
.complete (itself via a temp file + rename) and fsyncs. Only folders with a parseable
.complete and DCP's .metadata count as complete; torn ones are removed by the next save.
The newest complete one is loaded; the last `keep_last` are kept (marker removed first).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from olmoctl.errors import UsageError
from olmoctl.schemas.contract import (
    CHECKPOINT_TMP_PREFIX,
    COMPLETE_MARKER,
    DCP_METADATA,
    TRAINER_STATE,
    parse_step_dir,
    step_dir_name,
)
from olmoctl.schemas.recipe import ModelConfig
from olmoctl.train.faults import Faults


def config_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_hash(cfg: ModelConfig) -> str:
    return config_hash(cfg.model_dump(mode="json"))


@dataclass(frozen=True)
class CheckpointInfo:
    step: int
    path: Path
    marker: dict[str, Any]


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker's metadata if `path` is a complete checkpoint, else None."""
    try:
        marker = json.loads((path / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not (path / DCP_METADATA).is_file():
        return None
    return marker


def list_complete(root: Path) -> list[CheckpointInfo]:
    out = []
    if root.is_dir():
        for child in root.iterdir():
            step = parse_step_dir(child.name)
            if step is not None and child.is_dir():
                marker = read_marker(child)
                if marker is not None and marker.get("step") == step:
                    out.append(CheckpointInfo(step, child, marker))
    return sorted(out, key=lambda c: c.step)


def newest_complete(root: Path) -> CheckpointInfo | None:
    found = list_complete(root)
    return found[-1] if found else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    """Marker first, so a half-deleted checkpoint is never taken as complete."""
    (path / COMPLETE_MARKER).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def remove_torn(root: Path) -> None:
    if not root.is_dir():
        return
    for child in root.iterdir():
        torn_step = parse_step_dir(child.name) is not None and read_marker(child) is None
        if child.is_dir() and (child.name.startswith(CHECKPOINT_TMP_PREFIX) or torn_step):
            shutil.rmtree(child, ignore_errors=True)


def _rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def save(
    root: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    trainer_state: dict[str, Any],
    marker: dict[str, Any],
    keep_last: int,
    device: torch.device,
    faults: Faults,
) -> dict[str, Any]:
    """Collective: every rank calls it. Returns {step, path, seconds, bytes} (bytes on rank 0)."""
    t0 = time.monotonic()
    rank = dist.get_rank()
    final = root / step_dir_name(step)
    tmp = root / f"{CHECKPOINT_TMP_PREFIX}{step_dir_name(step)}"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        remove_torn(root)
        if final.exists():  # a complete one of the same step (a rerun): replace it
            _remove(final)
        tmp.mkdir()
    dist.barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp)
    rng_path = tmp / f"rng_{rank:05d}.pt"
    torch.save(_rng_state(device), rng_path)
    with open(rng_path, "rb") as f:
        os.fsync(f.fileno())
    dist.barrier()
    nbytes = 0
    if rank == 0:
        _write_atomic(tmp / TRAINER_STATE, json.dumps(trainer_state, indent=2) + "\n")
        faults.stall_save(step, "before_rename", root)
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(root)
        faults.stall_save(step, "before_marker", root)
        nbytes = _dir_bytes(final)
        info = {**marker, "step": step, "bytes": nbytes, "saved_at": time.time()}
        _write_atomic(final / COMPLETE_MARKER, json.dumps(info, indent=2) + "\n")
        _fsync_dir(final)
        for old in list_complete(root)[:-keep_last]:
            _remove(old.path)
    dist.barrier()
    return {"step": step, "path": str(final), "seconds": time.monotonic() - t0, "bytes": nbytes}


def check_compatible(info: CheckpointInfo, expected: dict[str, Any]) -> None:
    """One-line UsageError when the checkpoint cannot continue this run."""
    m = info.marker
    if m.get("model_hash") != expected["model_hash"]:
        old, new = m.get("model", {}), expected["model"]
        diff = [f"{k} {old.get(k)} != {new[k]}" for k in new if old.get(k) != new[k]]
        raise UsageError(
            f"checkpoint {info.path} was written for a different model shape "
            f"({', '.join(diff) or 'hash differs'}); use a new run directory"
        )
    for key in ("global_batch_size", "seq_len", "seed"):
        if key in m and m[key] != expected[key]:
            raise UsageError(
                f"checkpoint {info.path} was written with train.{key}={m[key]}, this recipe "
                f"has {expected[key]}: the data position would not continue"
            )


def load(
    info: CheckpointInfo,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> dict[str, Any]:
    """Collective. Loads model + optimizer (resharded to this world size by DCP), this rank's
    RNG state when the world size is the same, and returns the trainer state."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    try:
        dcp.load(state, checkpoint_id=info.path)
    except Exception as e:  # DCP wraps per-rank failures; the first line names the cause
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"checkpoint {info.path} does not load into this model: {first}") from e
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
    )
    rank, world = dist.get_rank(), dist.get_world_size()
    rng_path = info.path / f"rng_{rank:05d}.pt"
    if info.marker.get("world_size") == world and rng_path.exists():
        _set_rng_state(torch.load(rng_path, weights_only=True), device)
    return json.loads((info.path / TRAINER_STATE).read_text())
