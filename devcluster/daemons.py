"""The daemons: what each one runs (in which namespace, under which hostname, logging where),
starting one so that the recorded pid is the daemon's own, and starting a set of them in
dependency order, each waited on until it answers (munged, MariaDB, slurmdbd, slurmctld, then
every slurmd)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from .clients import ctld_up, node_ok, node_states, slurm
from .network import ns_tcp_ok
from .proc import alive, die, proc_start, run, save_record, tail, wait_until
from .settings import (
    CLUSTER_NAME,
    DBD_PORT,
    DIR,
    ETC,
    HEAD_HOST,
    HEAD_NS,
    HOSTS,
    LOG,
    MUNGE_SOCK,
    MYSQL_DATA,
    MYSQL_PORT,
    MYSQL_SOCK,
    RUN,
    SLURM_CONF,
    STATE,
    SYS_ENV,
    node_names,
    ns_of,
)


def daemon_order(n: int) -> list[str]:
    return ["munged", "mariadb", "slurmdbd", "slurmctld", *[f"slurmd-{x}" for x in node_names(n)]]


def daemon_spec(name: str) -> tuple[str, str, list[str], list[Path]]:
    """(netns, hostname, argv, log files) for one of our daemons."""
    if name == "munged":
        return (
            HEAD_NS,
            HEAD_HOST,
            [
                "/usr/sbin/munged",
                "-F",
                f"--socket={MUNGE_SOCK}",
                f"--key-file={ETC}/munge.key",
                f"--pid-file={RUN}/munged.pid",
                f"--seed-file={STATE}/munge.seed",
                f"--log-file={LOG}/munged.log",
                "--num-threads=4",
            ],
            [LOG / "munged.out"],
        )
    if name == "mariadb":
        return (
            HEAD_NS,
            HEAD_HOST,
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={MYSQL_DATA}",
                f"--socket={MYSQL_SOCK}",
                f"--port={MYSQL_PORT}",
                "--bind-address=127.0.0.1",
                "--user=root",
                f"--pid-file={RUN}/mariadbd.pid",
                f"--log-error={LOG}/mariadb.log",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=1G",
                "--innodb-log-file-size=64M",
                "--innodb-lock-wait-timeout=900",
                "--innodb-flush-log-at-trx-commit=0",
            ],
            [LOG / "mariadb.out", LOG / "mariadb.log"],
        )
    if name == "slurmdbd":
        return (
            HEAD_NS,
            HEAD_HOST,
            ["/usr/sbin/slurmdbd", "-D"],
            [LOG / "slurmdbd.out", LOG / "slurmdbd.log"],
        )
    if name == "slurmctld":
        return (
            HEAD_NS,
            HEAD_HOST,
            ["/usr/sbin/slurmctld", "-D", "-f", str(SLURM_CONF)],
            [LOG / "slurmctld.out", LOG / "slurmctld.log"],
        )
    if name.startswith("slurmd-"):
        node = name[len("slurmd-") :]
        return (
            ns_of(node),
            node,
            ["/usr/sbin/slurmd", "-D", "-N", node, "-f", str(SLURM_CONF)],
            [LOG / f"{name}.out", LOG / f"{name}.log"],
        )
    raise KeyError(name)


def start_daemon(rec: dict, name: str) -> subprocess.Popen:
    ns, host, argv, logs = daemon_spec(name)
    # nsenter (net) -> unshare (own hostname + mount namespace, mounts from the host keep
    # propagating in) -> sh sets the hostname, bind-mounts our hosts file, execs the daemon.
    # nsenter, unshare and sh all exec, so the recorded pid is the daemon's.
    # (`ip netns exec` is avoided on purpose: it remounts /sys and slurmd loses cgroupfs.)
    script = 'hostname "$1" && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"'
    full = [
        "/usr/bin/nsenter",
        f"--net=/run/netns/{ns}",
        "--",
        "/usr/bin/unshare",
        "--uts",
        "--mount",
        "--propagation",
        "slave",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
        host,
        str(HOSTS),
        *argv,
    ]
    with open(logs[0], "ab") as out:
        out.write(f"--- {time.strftime('%F %T')} starting {shlex.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=SYS_ENV,
            start_new_session=True,
            close_fds=True,
            cwd=str(DIR),
        )
    start = None
    for _ in range(100):  # the start time of a fresh pid is readable at once
        start = proc_start(proc.pid)
        if start is not None or proc.poll() is not None:
            break
        time.sleep(0.01)
    rec["pids"][name] = [proc.pid, start]
    save_record(rec)
    return proc


def show_logs(name: str) -> None:
    for log in daemon_spec(name)[3]:
        print(f"dev-cluster: last lines of {log}:", file=sys.stderr)
        print(tail(log), file=sys.stderr)


def wait_daemon(rec: dict, name: str, ready, timeout: float, what: str) -> None:
    def check():
        if not alive(rec["pids"].get(name)):
            show_logs(name)
            die(f"{name} exited during start-up")
        return ready()

    wait_until(check, timeout, what, on_fail=lambda: show_logs(name))


def start_all(rec: dict, names: list[str], fresh: bool = False) -> None:
    """Start the named daemons in dependency order, waiting for each to be ready."""
    order = daemon_order(rec["nodes"])
    names = [x for x in order if x in names]
    mysql = ["/usr/bin/mariadb", "--no-defaults", f"--socket={MYSQL_SOCK}", "-uroot", "-N", "-B"]
    for name in names:
        if name.startswith("slurmd-"):
            break
        start_daemon(rec, name)
        if name == "munged":
            wait_daemon(
                rec,
                name,
                lambda: (
                    run(["/usr/bin/munge", "-n", "-S", str(MUNGE_SOCK)], check=False).returncode
                    == 0
                ),
                20,
                "munged",
            )
        elif name == "mariadb":
            wait_daemon(
                rec,
                name,
                lambda: run([*mysql, "-e", "SELECT 1"], check=False).returncode == 0,
                60,
                "MariaDB",
            )
            if fresh:
                pw = rec["db_pass"]
                sql = "".join(
                    f"CREATE USER IF NOT EXISTS 'slurm'@'{h}' IDENTIFIED BY '{pw}'; "
                    f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{h}'; "
                    for h in ("127.0.0.1", "localhost")
                )
                run([*mysql, "-e", sql])
        elif name == "slurmdbd":
            wait_daemon(
                rec,
                name,
                lambda: ns_tcp_ok(HEAD_NS, "127.0.0.1", DBD_PORT),
                60,
                "slurmdbd to listen",
            )
        elif name == "slurmctld":
            wait_daemon(rec, name, ctld_up, 60, "slurmctld to answer `scontrol ping`")
    slurmds = [x for x in names if x.startswith("slurmd-")]
    for name in slurmds:
        start_daemon(rec, name)
    if slurmds:
        wanted = [x[len("slurmd-") :] for x in slurmds]

        def registered():
            for name in slurmds:
                if not alive(rec["pids"].get(name)):
                    show_logs(name)
                    die(f"{name} exited during start-up")
            states = node_states()
            return all(node_ok(states.get(x, "")) or "DRAIN" in states.get(x, "") for x in wanted)

        wait_until(
            registered,
            60,
            f"nodes {', '.join(wanted)} to register",
            on_fail=lambda: [show_logs(x) for x in slurmds],
        )
    if fresh:
        # accounting must see the cluster before the first sacct (slurmctld registers it)
        wait_until(
            lambda: (
                CLUSTER_NAME
                in slurm(
                    ["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"], check=False
                ).stdout
            ),
            30,
            "slurmctld to register the cluster with slurmdbd",
            on_fail=lambda: (show_logs("slurmctld"), show_logs("slurmdbd")),
        )
