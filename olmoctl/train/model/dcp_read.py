"""Reading a DCP checkpoint that anyone who can write the run directory could have changed
(`olmoctl export` runs on the launcher side, as the user): DCP's `.metadata` is a pickle, so
it is read by an unpickler that builds only the classes DCP writes there (no other callable
runs), read once (dcp.load asks again: the same answer, not a second read of a file that may
have changed since), and only tensors are loaded (DCP's non-tensor items go through
torch.load(weights_only=False): refused)."""

from __future__ import annotations

import io
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

from olmoctl.errors import OlmoctlError

METADATA_FILE = ".metadata"  # DCP's name for it (torch.distributed.checkpoint.filesystem)
# Far above a 65B model's metadata (a few MB per thousand shards), far below a machine's RAM.
METADATA_MAX_BYTES = 512 * 1024 * 1024
_DCP = "torch.distributed.checkpoint.metadata"
_ALLOWED = {
    (_DCP, "Metadata"),
    (_DCP, "TensorStorageMetadata"),
    (_DCP, "TensorProperties"),
    (_DCP, "ChunkStorageMetadata"),
    (_DCP, "BytesStorageMetadata"),
    (_DCP, "MetadataIndex"),
    (_DCP, "StorageMeta"),
    (_DCP, "_MEM_FORMAT_ENCODING"),
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch.serialization", "_get_layout"),  # a layout by its name: a table lookup
    ("torch", "Size"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
}


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of DCP's metadata")


def read_metadata(checkpoint: Path) -> Metadata:
    """The checkpoint's DCP metadata, built from the allowed classes only."""
    path = checkpoint / METADATA_FILE
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put there must not hang us
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OlmoctlError(f"{path} is not a regular file")
        data = f.read(METADATA_MAX_BYTES + 1)
    if len(data) > METADATA_MAX_BYTES:
        raise OlmoctlError(f"{path} is larger than {METADATA_MAX_BYTES} bytes")
    try:
        meta = _MetadataUnpickler(io.BytesIO(data)).load()
    except Exception as e:  # whatever the bytes make the unpickler raise: not metadata
        raise OlmoctlError(f"{path} is not DCP metadata: {e}") from None
    if not isinstance(meta, Metadata):
        raise OlmoctlError(f"{path} is not DCP metadata: a {type(meta).__name__}")
    return meta


class SafeReader(FileSystemReader):
    """FileSystemReader whose metadata is `meta` (read_metadata's), whatever is on disk now."""

    def __init__(self, checkpoint: Path, meta: Metadata) -> None:
        super().__init__(str(checkpoint))
        self._meta = meta

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        if getattr(self._meta, "storage_meta", None) is None:
            self._meta.storage_meta = StorageMeta()
        self._meta.storage_meta.load_id = self.load_id
        return self._meta


class TensorsOnly(DefaultLoadPlanner):
    """Loads tensors; a non-tensor item (which DCP would torch.load with weights_only=False)
    is refused."""

    def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
        raise OlmoctlError(
            f"checkpoint item {read_item.dest_index.fqn!r} is not a tensor: not loaded"
        )
