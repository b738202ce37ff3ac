"""The checks of `olmoctl doctor`'s job (olmoctl.train.burnin.preflight), each measured where a
real run would run: same nodes, same container, same environment. Each returns
schemas.preflight.Check objects: pass/fail, the measured value, and why it failed."""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import socket
import sys
from pathlib import Path
from types import ModuleType

from olmoctl.schemas import preflight as pf
from olmoctl.schemas.cluster import ClusterProfile
from olmoctl.schemas.preflight import Check
from olmoctl.schemas.recipe import Recipe
from olmoctl.schemas.shellsafe import split_refs

# Variables holding ':'-separated lists: the runtime or a module may add entries (Apptainer
# appends its own libs to LD_LIBRARY_PATH), so each expected entry must be there, in any
# place; any other variable must be exactly what the profile says.
_LIST_SUFFIX = "PATH"


def error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def imports() -> tuple[Check, ModuleType | None]:
    """torch, olmoctl and submitit (which a real run's job side starts from)."""
    try:
        import submitit
        import torch

        import olmoctl
    except Exception as e:  # an ImportError, or a broken library's own error
        where = f"python {sys.executable}: "
        return Check(name=pf.IMPORTS, ok=False, detail=where + error_text(e)), None
    # The interpreter first (issue 22 item 1): which env the rank really started in.
    value = f"python {sys.executable} {platform.python_version()}, torch {torch.__version__}, "
    value += f"olmoctl {olmoctl.__version__}, submitit {getattr(submitit, '__version__', '?')}"
    return Check(name=pf.IMPORTS, ok=True, value=value), torch


def gpus(cluster: ClusterProfile, torch: ModuleType | None, local_rank: int) -> tuple[Check, str]:
    """(check, this rank's device UUID). Per node, the launcher counts the distinct devices
    the node's ranks use against gpus_per_node; here: at least one is visible."""
    want = cluster.gpus_per_node
    if want == 0:
        return Check(name=pf.GPUS, ok=True, skipped=True, value="0", detail="CPU profile"), ""
    if torch is None:
        return Check(name=pf.GPUS, ok=False, detail="torch did not import"), ""
    try:
        n = torch.cuda.device_count()
        if n == 0:
            why = f"no GPU visible to this rank; the profile expects {want} per node"
            return Check(name=pf.GPUS, ok=False, value="0 visible", detail=why), ""
        index = local_rank % n
        uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", f"index {index}"))
        name = torch.cuda.get_device_name(index)
    except Exception as e:
        return Check(name=pf.GPUS, ok=False, detail=error_text(e)), ""
    value = f"{n} visible, rank uses {index} ({name})"
    return Check(name=pf.GPUS, ok=True, value=value), uuid


def expand(value: str, env: dict[str, str] | os._Environ[str]) -> str:
    """A profile value with its $NAME / ${NAME} references filled from `env` (as bash did
    when the script exported it; an unset one is empty)."""
    out = []
    for is_ref, text in split_refs(value):
        out.append(env.get(text.lstrip("$").strip("{}"), "") if is_ref else text)
    return "".join(out)


def _loaded_from(name: str) -> str:
    """Where the dynamic loader found library `name` (this process's /proc/self/maps)."""
    base = os.path.basename(name)
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(maxsplit=5)[-1].strip()
                if os.path.basename(path) == base:
                    return path
    except OSError:
        pass
    return name


def network_plugin(cluster: ClusterProfile) -> Check:
    """The NCCL/RCCL network plugin the profile names loads, and NCCL will find it."""
    if not cluster.network_plugin:
        return Check(name=pf.PLUGIN, ok=True, skipped=True, detail="the profile names none")
    lib = expand(cluster.network_plugin, os.environ)
    named = os.environ.get("NCCL_NET_PLUGIN", "")
    for candidate in [lib] + ([named] if "/" in named and named != lib else []):
        try:
            ctypes.CDLL(candidate)
        except OSError as e:
            return Check(name=pf.PLUGIN, ok=False, value=candidate, detail=error_text(e))
    path = _loaded_from(lib)
    if "/" in lib:  # a path: NCCL looks for its plugin by name on the library path
        dirs = os.environ.get("LD_LIBRARY_PATH", "").split(":")
        if named != lib and os.path.dirname(lib) not in dirs:
            why = (
                f"loads, but NCCL will not find it: put {os.path.dirname(lib)} on "
                f"LD_LIBRARY_PATH or set NCCL_NET_PLUGIN={lib}"
            )
            return Check(name=pf.PLUGIN, ok=False, value=path, detail=why)
    return Check(name=pf.PLUGIN, ok=True, value=f"loaded {path}")


def expected_env(cluster: ClusterProfile) -> dict[str, str]:
    """Every variable the profile sets for the job: env, then container.env inside."""
    want = dict(cluster.env)
    if cluster.container is not None:
        want.update(cluster.container.env)
    return want


def env(cluster: ClusterProfile) -> list[Check]:
    """One check per variable: the value the profile set reached the job (through modules,
    the runtime and srun), read here in the job itself."""
    out = []
    for name, raw in expected_env(cluster).items():
        check = f"{pf.ENV} {name}"
        want = expand(raw, os.environ)
        got = os.environ.get(name)
        if got is None:
            out.append(Check(name=check, ok=False, detail=f"not set in the job (want {want!r})"))
        elif name.endswith(_LIST_SUFFIX):
            missing = [e for e in want.split(":") if e and e not in got.split(":")]
            why = f"missing {':'.join(missing)}" if missing else ""
            out.append(Check(name=check, ok=not missing, value=got, detail=why))
        else:
            why = "" if got == want else f"the profile sets {want!r}"
            out.append(Check(name=check, ok=got == want, value=got, detail=why))
    return out


def ifname_matches(spec: str, interfaces: list[str]) -> list[str]:
    """The interfaces NCCL (and Gloo, for a plain list) would pick for an IFNAME value:
    prefixes, `=` for exact names, `^` to exclude (NCCL user guide, NCCL_SOCKET_IFNAME)."""
    exclude = spec.startswith("^")
    spec = spec.removeprefix("^")
    exact = spec.startswith("=")
    spec = spec.removeprefix("=")
    names = [p for p in spec.split(",") if p]

    def hit(iface: str) -> bool:
        return any(iface == p if exact else iface.startswith(p) for p in names)

    return [i for i in interfaces if hit(i) != exclude]


def socket_ifname(node: str) -> list[Check]:
    """NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME, when set, name interfaces this node has."""
    out = []
    try:
        interfaces = [name for _, name in socket.if_nameindex()]
    except OSError as e:
        return [Check(name=pf.IFNAME, ok=False, detail=error_text(e))]
    for var in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        spec = os.environ.get(var)
        if spec is None:
            continue
        found = ifname_matches(spec, interfaces)
        why = "" if found else f"no interface of {node} matches (it has {', '.join(interfaces)})"
        value = f"{var}={spec} -> {', '.join(found) or 'none'}"
        out.append(Check(name=pf.IFNAME, ok=bool(found), value=value, detail=why))
    if not out:
        out.append(Check(name=pf.IFNAME, ok=True, skipped=True, detail="neither variable set"))
    return out


def run_dir(path: Path, rank: int) -> Check:
    """The run directory takes a file (written, synced, read back, removed)."""
    probe = path / pf.PREFLIGHT_DIR / f".probe-{rank}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"olmoctl doctor\n")
            f.flush()
            os.fsync(f.fileno())
        ok = probe.read_bytes() == b"olmoctl doctor\n"
        probe.unlink()
        free = shutil.disk_usage(path).free / 1e9
    except OSError as e:
        return Check(name=pf.RUN_DIR, ok=False, value=str(path), detail=error_text(e))
    why = "" if ok else "read back other bytes than written"
    return Check(name=pf.RUN_DIR, ok=ok, value=f"{path} writable, {free:.1f} GB free", detail=why)


def data(recipe: Recipe, cluster: ClusterProfile) -> Check:
    """The recipe's token files exist, can be read, and hold whole tokens."""
    if not recipe.data.paths:
        return Check(name=pf.DATA, ok=True, skipped=True, detail="synthetic corpus, no files")
    try:
        from olmoctl.train.data.tokens import resolve_paths

        paths = resolve_paths(list(recipe.data.paths), cluster.data_root)
    except Exception as e:
        return Check(name=pf.DATA, ok=False, detail=error_text(e))
    size = 2 if recipe.data.dtype == "uint16" else 4
    total = 0
    for p in paths:
        try:
            with open(p, "rb") as f:
                f.read(1)
            n = p.stat().st_size
        except OSError as e:
            return Check(name=pf.DATA, ok=False, value=str(p), detail=error_text(e))
        if n == 0 or (p.suffix != ".npy" and n % size):
            why = f"{n} bytes: not whole {recipe.data.dtype} tokens"
            return Check(name=pf.DATA, ok=False, value=str(p), detail=why)
        total += n
    value = f"{len(paths)} file(s) readable, {total / 1e9:.2f} GB"
    return Check(name=pf.DATA, ok=True, value=value)
