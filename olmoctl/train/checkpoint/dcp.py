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
The newest complete one is loaded; retention (train/checkpoint/retention.py) keeps the last
`keep_last` plus the permanent ones (marker removed first). The save itself, synchronous or
in the background, is olmoctl.train.checkpoint.async_save.Saver; this module holds its steps.
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
from olmoctl.train.runtime.faults import Faults


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


def tmp_dir(root: Path, step: int) -> Path:
    return root / f"{CHECKPOINT_TMP_PREFIX}{step_dir_name(step)}"


def begin(root: Path, step: int) -> Path:
    """Rank 0, before any rank writes: torn leftovers go, a complete checkpoint of the same
    step (a rerun) is replaced, and an empty .tmp-step_N is made. Returns that folder."""
    root.mkdir(parents=True, exist_ok=True)
    remove_torn(root)
    final = root / step_dir_name(step)
    if final.exists():
        _remove(final)
    tmp = tmp_dir(root, step)
    tmp.mkdir()
    return tmp


def write_rng(tmp: Path, rank: int, rng: dict[str, Any]) -> None:
    """This rank's RNG states (captured when the save was asked for), fsync'd."""
    rng_path = tmp / f"rng_{rank:05d}.pt"
    with open(rng_path, "wb") as f:
        torch.save(rng, f)
        f.flush()
        os.fsync(f.fileno())


def capture_rng(device: torch.device) -> dict[str, Any]:
    return _rng_state(device)


def commit(
    root: Path,
    step: int,
    *,
    trainer_state: dict[str, Any],
    marker: dict[str, Any],
    faults: Faults,
) -> int:
    """Rank 0, after every rank's files are written and synced: trainer_state.json, the
    atomic rename to step_N, then `.complete` (written last). Returns the checkpoint's bytes."""
    tmp, final = tmp_dir(root, step), root / step_dir_name(step)
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
    return nbytes


def discard(root: Path, step: int) -> None:
    """Rank 0, after a failed save of `step`: its torn folder goes (renamed or not), so only
    complete checkpoints remain and the space is given back."""
    shutil.rmtree(tmp_dir(root, step), ignore_errors=True)
    final = root / step_dir_name(step)
    if final.is_dir() and read_marker(final) is None:
        shutil.rmtree(final, ignore_errors=True)


def apply_retention(root: Path, keep_last: int, permanent_every: int) -> list[int]:
    """Rank 0, on the checkpoint writer after a commit: delete the complete checkpoints
    retention does not keep (marker first). Returns the steps removed."""
    from olmoctl.train.checkpoint.retention import to_remove

    found = {c.step: c for c in list_complete(root)}
    gone = to_remove(found, keep_last, permanent_every)
    for step in gone:
        _remove(found[step].path)
    return gone


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
