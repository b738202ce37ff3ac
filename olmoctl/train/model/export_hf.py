"""A DCP checkpoint (written by any world size) -> a Hugging Face `transformers` OLMo model
directory (config.json + model.safetensors) that `AutoModelForCausalLM.from_pretrained`
loads. The field and name mapping is schemas/hf.py's; this module only moves tensors.

Needs torch and safetensors, not transformers. Loads without a process group: DCP reads
every shard of every saved rank into full (unsharded) tensors on this machine's CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from olmoctl.errors import OlmoctlError, UsageError
from olmoctl.schemas import hf
from olmoctl.schemas.recipe import ModelConfig
from olmoctl.train.model import dcp_read

MODEL_PREFIX = "model."  # train/checkpoint/dcp.py saves {"model": ..., "optim": ...}
# Wrappers that may sit in a saved name (torch.compile, activation checkpointing, FSDP1).
_WRAPPER_PARTS = ("_orig_mod.", "_checkpoint_wrapped_module.", "_fsdp_wrapped_module.")
DTYPES = {ours: getattr(torch, theirs) for ours, theirs in hf.DTYPES.items()}
WEIGHTS_FILE = "model.safetensors"
PROVENANCE_FILE = "olmoctl-export.json"


def _plain(name: str) -> str:
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


def load_model_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The model's full fp32-or-saved-dtype tensors from a DCP checkpoint, by plain name."""
    try:  # a pickle in a run directory: only DCP's own classes are built (dcp_read.py)
        meta = dcp_read.read_metadata(checkpoint)
    except (OSError, OlmoctlError) as e:
        raise OlmoctlError(f"checkpoint {checkpoint} has no readable DCP metadata: {e}") from None
    wanted: dict[str, torch.Tensor] = {}
    for key, item in meta.state_dict_metadata.items():
        if key.startswith(MODEL_PREFIX) and isinstance(item, TensorStorageMetadata):
            wanted[key] = torch.empty(item.size, dtype=item.properties.dtype)
    if not wanted:
        raise OlmoctlError(f"checkpoint {checkpoint} holds no model tensors")
    # DCP keys are the flattened paths of the saved dict: load into the same shape.
    nested = {"model": {k[len(MODEL_PREFIX) :]: v for k, v in wanted.items()}}
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": yes
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(
            nested,
            storage_reader=dcp_read.SafeReader(checkpoint, meta),
            planner=dcp_read.TensorsOnly(),
            no_dist=True,
        )
    return {_plain(k): v for k, v in nested["model"].items()}


def to_hf(
    state: dict[str, torch.Tensor], model: ModelConfig, dtype: str
) -> dict[str, torch.Tensor]:
    """olmoctl names -> HF names, fused weights split, cast to `dtype`."""
    table = hf.parameter_names(model)
    missing = sorted(set(table) - set(state))
    extra = sorted(set(state) - set(table))
    if missing or extra:
        raise OlmoctlError(
            "checkpoint does not match the recipe's model: "
            + "; ".join(
                p
                for p in (
                    f"missing {', '.join(missing[:5])}" if missing else "",
                    f"unexpected {', '.join(extra[:5])}" if extra else "",
                )
                if p
            )
        )
    out: dict[str, torch.Tensor] = {}
    for ours, parts in table.items():
        tensor = state[ours]
        rows = [n for _, n in parts]
        if tensor.shape[0] != sum(rows):
            raise OlmoctlError(
                f"checkpoint tensor {ours} has {tensor.shape[0]} rows, the recipe's model "
                f"expects {sum(rows)}"
            )
        for (name, _), piece in zip(parts, torch.split(tensor, rows, dim=0), strict=True):
            out[name] = piece.to(DTYPES[dtype]).contiguous().clone()
    return out


def export(
    checkpoint: Path,
    model: ModelConfig,
    out: Path,
    *,
    dtype: str = "fp32",
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the HF model directory `out` (which must not exist) in one step: everything
    goes to a temporary sibling that is renamed into place last, so `out` is complete or
    absent. Returns a summary (files, parameters, bytes)."""
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    why = hf.refusals(model)
    if why:
        raise UsageError(f"cannot export as a transformers OLMo model: {'; '.join(why)}")
    if out.exists():
        raise UsageError(f"--out {out} already exists; give a new directory")
    tensors = to_hf(load_model_state(checkpoint), model, dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        config = hf.config(
            model,
            dtype=hf.DTYPES[dtype],
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )
        _write_json(tmp / "config.json", config)
        summary = {
            "out": str(out),
            "checkpoint": str(checkpoint),
            "dtype": dtype,
            "parameters": sum(t.numel() for t in tensors.values()),
            "bytes": (tmp / WEIGHTS_FILE).stat().st_size,
            "files": ["config.json", WEIGHTS_FILE, PROVENANCE_FILE],
        }
        _write_json(tmp / PROVENANCE_FILE, {**(provenance or {}), **summary})
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        tmp.chmod(0o755)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
