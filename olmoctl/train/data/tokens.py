"""Token data: flat uint16/uint32 memmaps cut into seq_len instances, in a global order.

OLMo's scheme: instance k of a file is tokens [k*L, (k+1)*L) (the tail that does not fill
an instance is dropped); files are concatenated in the recipe's order. A permutation of all
instances from numpy.random.Generator(PCG64(seed)) (one more permutation per epoch, from the
same generator) is written once to RUN_DIR/global_indices.npy. Global batch i is
indices[i*B:(i+1)*B] and rank r of W takes rows [r*B/W, (r+1)*B/W), so the order of the
data does not depend on the world size, and resuming needs only the step. The file names
are the launcher's too (olmoctl.schemas.contract).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from olmoctl.errors import UsageError
from olmoctl.schemas.contract import HELD_OUT_FILE, INDICES_FILE, INDICES_META, SYNTHETIC_FILE

NPY_MAGIC = b"\x93NUMPY"
# Files up to this many tokens are scanned for ids above the vocabulary at start-up (so the
# error names the file); beyond it, every batch is checked as it is read.
SCAN_LIMIT_TOKENS = 64 * 1024 * 1024
# Mixed into train.seed for the held-out draw (eval.held_out_fraction): its own stream.
HELD_OUT_SALT = 0xE7A1


def open_token_file(path: Path, dtype: str) -> np.ndarray:
    """A 1-D read-only memmap of a token file: raw (OLMo/Dolma) or with a numpy header."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
    except FileNotFoundError:
        raise UsageError(f"data file {path}: not found") from None
    except OSError as e:
        raise UsageError(f"data file {path}: cannot read: {e.strerror}") from None
    if head == NPY_MAGIC:
        try:
            arr = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as e:
            raise UsageError(f"data file {path}: not a readable .npy file: {e}") from None
        if arr.dtype not in (np.uint16, np.uint32) or arr.ndim != 1:
            raise UsageError(
                f"data file {path}: expected a 1-D uint16/uint32 array, got {arr.ndim}-D "
                f"{arr.dtype}"
            )
        return arr
    itemsize = np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size % itemsize:
        raise UsageError(
            f"data file {path}: {size} bytes is not a whole number of {dtype} tokens "
            "(wrong data.dtype?)"
        )
    if size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def resolve_paths(paths: list[str], data_root: str) -> list[Path]:
    out = []
    for p in paths:
        path = Path(os.path.expandvars(os.path.expanduser(p)))
        if not path.is_absolute() and data_root:
            path = Path(os.path.expandvars(os.path.expanduser(data_root))) / path
        out.append(path)
    return out


class TokenDataset:
    """All files' instances, addressed by one global instance number."""

    def __init__(self, paths: list[Path], dtype: str, seq_len: int) -> None:
        if not paths:
            raise UsageError("no data files")
        self.paths = paths
        self.seq_len = seq_len
        self.arrays = [open_token_file(p, dtype) for p in paths]
        counts = [a.size // seq_len for a in self.arrays]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.num_tokens = int(sum(a.size for a in self.arrays))
        self.num_instances = int(self.offsets[-1])
        if self.num_instances == 0:
            raise UsageError(
                f"train.seq_len ({seq_len}) is longer than the data: no file holds a whole "
                f"instance ({self.num_tokens} tokens in {len(paths)} file(s))"
            )

    def check_vocab(self, vocab_size: int) -> None:
        """Scan small data for token ids >= vocab_size (big data is checked per batch)."""
        if self.num_tokens > SCAN_LIMIT_TOKENS:
            return
        for path, arr in zip(self.paths, self.arrays, strict=True):
            if arr.size and int(arr.max()) >= vocab_size:
                pos = int(np.argmax(arr >= vocab_size))
                raise UsageError(
                    f"data file {path}: token id {int(arr[pos])} at position {pos} is not "
                    f"below model.vocab_size ({vocab_size})"
                )

    def gather(self, instances: np.ndarray) -> np.ndarray:
        """Rows of seq_len tokens (int64) for global instance numbers."""
        out = np.empty((len(instances), self.seq_len), dtype=np.int64)
        files = np.searchsorted(self.offsets, instances, side="right") - 1
        for row, (inst, f) in enumerate(zip(instances.tolist(), files.tolist(), strict=True)):
            start = (inst - int(self.offsets[f])) * self.seq_len
            out[row] = self.arrays[f][start : start + self.seq_len]
        return out


def build_global_indices(
    num_instances: int, num_needed: int, seed: int, held_out: np.ndarray | None = None
) -> np.ndarray:
    """Enough epochs of permutations (one generator, PCG64(seed)) to cover num_needed.

    With held-out instances (eval.held_out_fraction), the permutations are of the others,
    so training never sees a held-out instance; without, the order is what it always was.
    """
    dtype = np.uint32 if num_instances < 2**32 else np.uint64
    rng = np.random.Generator(np.random.PCG64(seed))
    if held_out is None or not held_out.size:
        epochs = max(1, math.ceil(num_needed / num_instances))
        return np.concatenate([rng.permutation(num_instances).astype(dtype) for _ in range(epochs)])
    keep = np.ones(num_instances, dtype=bool)
    keep[held_out] = False
    train = np.flatnonzero(keep).astype(dtype)
    epochs = max(1, math.ceil(num_needed / train.size))
    return np.concatenate([train[rng.permutation(train.size)] for _ in range(epochs)])


def held_out_count(num_instances: int, fraction: float) -> int:
    return int(num_instances * fraction)


def draw_held_out(num_instances: int, count: int, seed: int) -> np.ndarray:
    """`count` instance numbers, sorted, drawn from their own stream of train.seed (not the
    training order's), so the split depends on the seed and the data shape only."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, HELD_OUT_SALT])))
    dtype = np.uint32 if num_instances < 2**32 else np.uint64
    return np.sort(rng.choice(num_instances, size=count, replace=False)).astype(dtype)


def _save_npy(run_dir: Path, name: str, array: np.ndarray) -> None:
    tmp = run_dir / f".{name}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, run_dir / name)


def write_global_indices(
    run_dir: Path,
    dataset: TokenDataset,
    num_needed: int,
    seed: int,
    held_out_fraction: float = 0.0,
) -> Path:
    """Rank 0, once: RUN_DIR/global_indices.npy (+ a JSON note of what it was made from),
    and RUN_DIR/held_out_indices.npy when eval.held_out_fraction keeps instances out.

    An existing file is kept when it was made from the same data shape, seed and held-out
    count and is long enough; a longer budget rewrites it (the same generator gives the same
    prefix, the held-out file is kept). A file from other data, another seed or another
    split is an error: the order of a run never changes.
    """
    path, meta_path = run_dir / INDICES_FILE, run_dir / INDICES_META
    held_path = run_dir / HELD_OUT_FILE
    count = held_out_count(dataset.num_instances, held_out_fraction)
    if held_out_fraction and not count:
        raise UsageError(
            f"eval.held_out_fraction {held_out_fraction} of {dataset.num_instances} "
            "instances holds none; raise it or use eval.paths"
        )
    meta: dict[str, int] = {
        "seed": seed,
        "num_instances": dataset.num_instances,
        "seq_len": dataset.seq_len,
    }
    if count:  # absent when there is no split: older runs' notes read the same
        meta["held_out"] = count
    if path.exists() and meta_path.exists():
        old = json.loads(meta_path.read_text())
        old.setdefault("held_out", 0)
        diff = {k: (old.get(k), v) for k, v in {"held_out": 0, **meta}.items() if old.get(k) != v}
        if diff:
            what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in diff.items())
            raise UsageError(
                f"{path} was made for other data, another seed or another held-out split "
                f"({what}); a run's data order cannot change"
            )
        if np.load(path, mmap_mode="r").size >= num_needed:
            return path
    held = None
    if count:
        if held_path.exists() and np.load(held_path, mmap_mode="r").size == count:
            held = np.load(held_path)
        else:
            held = draw_held_out(dataset.num_instances, count, seed)
            _save_npy(run_dir, HELD_OUT_FILE, held)
    indices = build_global_indices(dataset.num_instances, num_needed, seed, held)
    _save_npy(run_dir, INDICES_FILE, indices)
    meta_tmp = run_dir / f".{INDICES_META}.tmp-{os.getpid()}"
    meta_tmp.write_text(json.dumps({**meta, "length": int(indices.size)}) + "\n")
    os.replace(meta_tmp, meta_path)
    return path


class BatchLoader:
    """This rank's rows of global batch i."""

    def __init__(
        self, dataset: TokenDataset, indices: np.ndarray, global_batch: int, rank: int, world: int
    ) -> None:
        if global_batch % world:
            raise UsageError(
                f"train.global_batch_size ({global_batch}) is not divisible by the world "
                f"size ({world})"
            )
        self.dataset = dataset
        self.indices = indices
        self.global_batch = global_batch
        self.per_rank = global_batch // world
        self.rank = rank

    def global_indices(self, step: int) -> np.ndarray:
        start = step * self.global_batch
        if start + self.global_batch > self.indices.size:
            raise UsageError(f"{INDICES_FILE} ends before step {step + 1}")
        return np.asarray(self.indices[start : start + self.global_batch], dtype=np.int64)

    def local_batch(self, step: int) -> np.ndarray:
        """Rows for step `step` (0-based: the batch that optimizer step step+1 trains on)."""
        ids = self.global_indices(step)[self.rank * self.per_rank : (self.rank + 1) * self.per_rank]
        return self.dataset.gather(ids)


def write_synthetic(run_dir: Path) -> Path:
    """Rank 0: tokenize the built-in corpus into RUN_DIR/data/synthetic.npy (if absent)."""
    from olmoctl.train.data.corpus import generate_documents
    from olmoctl.train.data.tokenize import tokenize_documents, write_tokens

    path = run_dir / SYNTHETIC_FILE
    if not path.exists():
        write_tokens(tokenize_documents(generate_documents(400_000, seed=0)), path)
    return path
