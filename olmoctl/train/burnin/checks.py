"""The burn-in's measurements: each returns one number (higher is better) or raises.

Local: `gemm` (TFLOP/s of square matmuls on the device, bf16 on GPU, fp32 on CPU),
`memory` (GB/s of write + copy + verify of a buffer on the device; on a CPU node that is the
host memory), `host_memory` (the same in host memory, on GPU nodes), `filesystem` (MB/s of a
file written, fsync'd, read back and compared in the run directory, and every data file
readable). Across nodes: `allreduce_busbw` (nccl-tests' bus bandwidth: algbw x 2(n-1)/n) and
`pair_bandwidth` (a 2-rank all-reduce between neighbour nodes).

Each throughput is the best of WINDOWS measurements (a third of measure_s each, or one
pass of the all-reduce iterations), so a moment of contention from elsewhere is not taken for
a slow node; a node that is slow all the time (a throttled clock, a CPU quota) is slow in
every window.

`limited` runs a check in a thread with a time limit, so a hung device or filesystem is a
failed check after `limit_s`, not a job that waits forever.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

MiB = 1 << 20
WINDOWS = 3


def limited(fn: Callable[[], float], limit_s: float) -> tuple[float | None, str | None]:
    """(value, None) or (None, error): the error names a timeout when fn takes too long."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = float(fn())
        except Exception as e:  # any failure of a check is its verdict
            box["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]

    t = threading.Thread(target=target, name="olmoctl-burnin-check", daemon=True)
    t.start()
    t.join(limit_s)
    if t.is_alive():
        return None, f"no answer within {limit_s:g} s"
    if "error" in box:
        return None, box["error"]
    return box["value"], None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm(device: torch.device, size: int, measure_s: float) -> float:
    """TFLOP/s of size x size matmuls for about measure_s seconds (after one warm-up)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen, dtype=torch.float32).to(device, dtype)
    b = torch.randn(size, size, generator=gen, dtype=torch.float32).to(device, dtype)
    c = a @ b
    _sync(device)
    if not torch.isfinite(c.float()).all():
        raise RuntimeError("GEMM produced non-finite values")
    best = 0.0
    for _ in range(WINDOWS):
        n = 0
        start = time.perf_counter()
        while True:
            torch.mm(a, b, out=c)
            n += 1
            if n % 4 == 0 or device.type != "cuda":
                _sync(device)
                if time.perf_counter() - start >= measure_s / WINDOWS:
                    break
        best = max(best, 2 * size**3 * n / (time.perf_counter() - start) / 1e12)
    return best


def memory(device: torch.device, mb: int, measure_s: float) -> float:
    """GB/s moved writing a pattern into a buffer and copying it, verified at the end."""
    numel = mb * MiB // 4
    src = torch.empty(numel, dtype=torch.int32, device=device)
    dst = torch.empty_like(src)
    best = 0.0
    n = 0
    for _ in range(WINDOWS):
        moved = 0
        start = time.perf_counter()
        while True:
            src.fill_(n + 0x5A5A)  # write: numel x 4 bytes
            dst.copy_(src)  # read + write
            moved += 3 * numel * 4
            n += 1
            _sync(device)
            if time.perf_counter() - start >= measure_s / WINDOWS:
                break
        best = max(best, moved / (time.perf_counter() - start) / 1e9)
    expected = n - 1 + 0x5A5A
    bad = int((dst != expected).sum().item())
    if bad:
        raise RuntimeError(f"{bad} of {numel} words read back wrong")
    return best


def filesystem(folder: Path, tag: str, mb: int, data_files: list[Path]) -> float:
    """MB/s of writing mb MiB into folder (fsync'd), reading it back and comparing; every
    data file must open and give its first MiB."""
    for path in data_files:
        with open(path, "rb") as f:
            f.read(MiB)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".fs-{tag}-{os.getpid()}"
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    start = time.perf_counter()
    try:
        with open(path, "wb") as f:
            for i in range(mb):
                chunk = block[i % 997 :] + block[: i % 997]  # not the same block every time
                f.write(chunk)
                digest.update(chunk)
            f.flush()
            os.fsync(f.fileno())
        back = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(MiB):
                back.update(chunk)
        if back.digest() != digest.digest():
            raise RuntimeError(f"{path} read back differs from what was written")
    finally:
        path.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    return 2 * mb * MiB / seconds / 1e6


def _group(
    backend: str, store: dist.Store, prefix: str, rank: int, size: int, timeout_s: float
) -> None:
    dist.init_process_group(
        backend,
        store=dist.PrefixStore(prefix, store),
        rank=rank,
        world_size=size,
        timeout=timedelta(seconds=timeout_s),
    )


def _timed_allreduce(buf: torch.Tensor, iters: int) -> float:
    """Seconds per all-reduce of buf over the current group (after a warm-up)."""
    dist.all_reduce(buf)
    _sync(buf.device)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(buf)
    _sync(buf.device)
    return (time.perf_counter() - start) / iters


def collective(
    backend: str,
    store: dist.Store,
    prefix: str,
    rank: int,
    size: int,
    device: torch.device,
    mb: float,
    timeout_s: float,
    iters: int = 5,
) -> float:
    """Bus bandwidth (GB/s) of an all-reduce of mb MiB among `size` ranks, in a group of its
    own (made and torn down here, on its own key prefix of the burn-in's store)."""
    try:
        _group(backend, store, prefix, rank, size, timeout_s)
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        numel = max(1, int(mb * MiB) // torch.tensor([], dtype=dtype).element_size())
        buf = torch.ones(numel, dtype=dtype, device=device)
        seconds = min(_timed_allreduce(buf, iters) for _ in range(WINDOWS))
        nbytes = numel * buf.element_size()
        factor = 2 * (size - 1) / size if size > 1 else 1.0
        return nbytes / seconds * factor / 1e9
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
