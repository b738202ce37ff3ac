"""How each container runtime wraps the ranks' command in the batch script (pure): the
words of the exec prefix, line by line, or (pyxis) srun's own flags. The template renders a
profile value with `qx` (only $NAME/${NAME} expand) and a constant of ours with `q`.

  singularity / apptainer  RUNTIME exec -B BIND... EXEC_ARGS... IMAGE  CMD
            (container.env: exported as SINGULARITYENV_X / APPTAINERENV_X)
  bwrap     env --ignore-signal=USR2,TERM bwrap --ro-bind IMAGE / --dev /dev --proc /proc
            --tmpfs /tmp --unshare-pid --die-with-parent --ro-bind-try F F (HOST_FILES)...
            --bind SRC DST... --setenv X VALUE... EXEC_ARGS...
            -- env --default-signal=USR2,TERM  CMD
  podman    podman run --rm --network=host --ipc=host --env NAME... --env X=VALUE...
            -v BIND... EXEC_ARGS... IMAGE  CMD
  pyxis     srun --container-image=IMAGE --container-name=olmoctl-JOB-RESTART
            --container-mounts=BIND,... --container-env=NAMES EXEC_ARGS...  CMD
            (no prefix; container.env exported as is and named there)

Signals: Slurm signals every process of the step (proctrack), the runtime's own included.
Singularity's starter, podman (--sig-proxy) and pyxis forward or absorb them; bubblewrap's
monitor process would die of USR2/TERM (and take the ranks with it), so it runs with both
ignored and gives the command the default handling back (`env --default-signal`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from olmoctl.schemas.cluster import ClusterProfile, ContainerConfig

# How Singularity and Apptainer take a variable meant for the inside only: exported on the
# host under this prefix (Apptainer docs, "Environment and Metadata": SINGULARITYENV_xxx sets
# xxx in the container, and overrides what the image sets; Apptainer reads APPTAINERENV_).
CONTAINER_ENV_PREFIX = {"singularity": "SINGULARITYENV_", "apptainer": "APPTAINERENV_"}
# What the job reads from the batch script's environment; podman passes only what is named
# (a trailing * names every variable with that prefix: podman run --env).
PODMAN_PASS = ("SLURM_*", "OLMOCTL_*", "SUBMITIT_*", "MASTER_ADDR", "MASTER_PORT")
STOP_SIGNALS = "USR2,TERM"  # train/runtime/signals.py's STOP_SIGNALS
# What Singularity/Apptainer bind from the host by default and bubblewrap does not (Apptainer
# user docs, "Bind Paths and Mounts": /etc/hosts among the system-defined bind paths;
# /etc/resolv.conf, /etc/group and /etc/passwd mounted, adapted, into every container).
# Without /etc/hosts a rank in a real image cannot resolve the other nodes' names: torch's
# rendezvous loops on "cannot retrieve the network address" (issue 22 item 8). `-try`: a
# file the node lacks is left out, as the runtimes do.
HOST_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/passwd", "/etc/group")
# The batch-script variable (templates/sbatch.sh.j2 sets it once per attempt) that names the
# pyxis container: pyxis imports the image for a step unless a container of that name is
# already on the node ("If a container with this name already exists, the existing container
# is used and the import is skipped": pyxis README, --container-name). So the burn-in step
# imports it on every node and the training step (and in-allocation restarts) reuse it.
PYXIS_NAME_VAR = "olmoctl_container"


@dataclass(frozen=True)
class Arg:
    text: str
    live: bool = False  # a profile value ($NAME/${NAME} expand there); else a constant


@dataclass(frozen=True)
class Container:
    runtime: str
    srun_args: list[Arg] = field(default_factory=list)  # pyxis: srun's container flags
    lines: list[list[Arg]] = field(default_factory=list)  # the exec prefix, one line each
    # bwrap: (source or "", destination) mount points to find in the image (mount_points)
    mount_points: list[tuple[str, str]] = field(default_factory=list)


def _const(*words: str) -> list[Arg]:
    return [Arg(w) for w in words]


def _exec_arg_lines(args: list[str]) -> list[list[Arg]]:
    """A line per option (an argument starting with -) with the values that follow it."""
    lines: list[list[Arg]] = []
    for a in args:
        if a.startswith("-") or not lines:
            lines.append([])
        lines[-1].append(Arg(a, live=True))
    return lines


def split_bind(bind: str) -> tuple[str, str, str]:
    """src[:dst[:opts]] -> (src, dst, opts); dst defaults to src (schemas/cluster.py has
    checked the form)."""
    parts = bind.split(":")
    src = parts[0]
    dst = parts[1] if len(parts) > 1 else src
    return src, dst, parts[2] if len(parts) > 2 else ""


def host_exports(cluster: ClusterProfile) -> list[tuple[str, str]]:
    """container.env as the batch script exports it: under the runtime's prefix
    (singularity, apptainer), as is (pyxis: --container-env names them too), or not at all
    (bwrap: --setenv, podman: --env NAME=VALUE in the prefix)."""
    c = cluster.container
    if c is None or c.runtime in ("bwrap", "podman"):
        return []
    prefix = CONTAINER_ENV_PREFIX.get(c.runtime, "")
    return [(prefix + name, value) for name, value in c.env.items()]


def full_bind(bind: str) -> str:
    """src:dst[:opts] always (podman's `-v PATH` alone would be an anonymous volume)."""
    src, dst, opts = split_bind(bind)
    return f"{src}:{dst}" + (f":{opts}" if opts else "")


def _bwrap(c: ContainerConfig) -> list[list[Arg]]:
    lines = [
        _const("env", f"--ignore-signal={STOP_SIGNALS}", "bwrap"),
        [Arg("--ro-bind"), Arg(c.image, live=True), Arg("/")],
        _const("--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"),
        _const("--unshare-pid", "--die-with-parent"),
    ]
    lines += [_const("--ro-bind-try", f, f) for f in HOST_FILES]
    for bind in c.binds:
        src, dst, opts = split_bind(bind)
        flag = "--ro-bind" if opts == "ro" else "--bind"
        lines.append([Arg(flag), Arg(src, live=True), Arg(dst, live=True)])
    lines += [[Arg("--setenv"), Arg(k), Arg(v, live=True)] for k, v in c.env.items()]
    lines += _exec_arg_lines(c.exec_args)
    lines.append(_const("--", "env", f"--default-signal={STOP_SIGNALS}"))
    return lines


def _podman(c: ContainerConfig, env_names: list[str]) -> list[list[Arg]]:
    lines = [_const("podman", "run", "--rm", "--network=host", "--ipc=host")]
    lines += [_const("--env", name) for name in [*PODMAN_PASS, *env_names]]
    lines += [[Arg("--env"), Arg(f"{k}={v}", live=True)] for k, v in c.env.items()]
    lines += [[Arg("-v"), Arg(full_bind(b), live=True)] for b in c.binds]
    lines += _exec_arg_lines(c.exec_args)
    lines.append([Arg(c.image, live=True)])
    return lines


def _singularity(c: ContainerConfig) -> list[list[Arg]]:
    lines = [_const(c.runtime, "exec")]
    lines += [[Arg("-B"), Arg(b, live=True)] for b in c.binds]
    lines += _exec_arg_lines(c.exec_args)
    lines.append([Arg(c.image, live=True)])
    return lines


def _pyxis(c: ContainerConfig, env_names: list[str]) -> list[Arg]:
    args = [
        Arg(f"--container-image={c.image}", live=True),
        Arg(f"--container-name=${PYXIS_NAME_VAR}", live=True),  # our variable, not user text
    ]
    if c.binds:
        mounts = ",".join(map(full_bind, c.binds))
        args.append(Arg(f"--container-mounts={mounts}", live=True))
    if env_names:  # the profile's values win over what the image sets
        args.append(Arg("--container-env=" + ",".join(env_names)))
    return args + [Arg(a, live=True) for a in c.exec_args]


def mount_points(c: ContainerConfig) -> list[tuple[str, str]]:
    """bwrap over a root filesystem other than the host's: (source on the node, or "" for a
    profile bind, destination) of each bind whose mount point must already be in the image.
    bubblewrap cannot create one in a read-only root ("Can't mkdir parents for DST:
    Read-only file system", in every rank's log), so the batch script checks each before
    any step starts and stops with one line (templates/sbatch.sh.j2: it skips a HOST_FILES
    source the node lacks, as --ro-bind-try does, and destinations under /tmp, /dev and
    /proc, which bwrap mounts itself). Binds in exec_args (free-form) are not checked."""
    if c.runtime != "bwrap" or c.image.rstrip("/") == "":
        return []  # "/": the host's root, where every host path is a mount point already
    return [(f, f) for f in HOST_FILES] + [("", split_bind(b)[1]) for b in c.binds]


def plan(cluster: ClusterProfile) -> Container | None:
    c = cluster.container
    if c is None:
        return None
    env_names = list(cluster.env)
    if c.runtime == "pyxis":  # container.env too: exported as is (host_exports), named here
        names = env_names + [k for k in c.env if k not in cluster.env]
        return Container(c.runtime, srun_args=_pyxis(c, names))
    if c.runtime == "bwrap":
        return Container(c.runtime, lines=_bwrap(c), mount_points=mount_points(c))
    if c.runtime == "podman":
        return Container(c.runtime, lines=_podman(c, env_names))
    return Container(c.runtime, lines=_singularity(c))
