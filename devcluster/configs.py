"""The files the cluster reads, written fresh by every `up`: slurm.conf (tuned so that tests
see failures in seconds), slurmdbd.conf, gres.conf (fake GPUs), the hosts file every daemon
sees as /etc/hosts, the munge key, and $DIR/bin's client wrappers that reach the cluster from
the machine's own namespace."""

from __future__ import annotations

import os
import secrets
import shlex
import stat

from .settings import (
    BIN,
    CLIENTS,
    CLUSTER_NAME,
    CPUS_PER_NODE,
    CTLD_PORT,
    DBD_PORT,
    DEV,
    DIR,
    ETC,
    GPUS_PER_NODE,
    HEAD_ADDR,
    HEAD_HOST,
    HEAD_NS,
    HOSTS,
    LOG,
    MUNGE_SOCK,
    MYSQL_PORT,
    PARTITION,
    RUN,
    SLURM_CONF,
    SLURMD_PORT,
    STATE,
    node_addr,
    node_names,
    ns_of,
)


def write_configs(n: int, db_pass: str) -> None:
    nodes = node_names(n)
    for d in (
        ETC,
        RUN,
        LOG,
        STATE,
        BIN,
        DEV,
        MUNGE_SOCK.parent,
        STATE / "slurmctld",
        *(STATE / f"slurmd-{x}" for x in nodes),
    ):
        d.mkdir(parents=True, exist_ok=True)
    # munged insists on a private key and a socket folder others cannot write to
    DIR.chmod(0o755)
    MUNGE_SOCK.parent.chmod(0o755)
    key = ETC / "munge.key"
    if not key.exists():
        key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o600)

    # fake GPUs: character devices equal to /dev/null (major 1, minor 3)
    for i in range(GPUS_PER_NODE):
        dev = DEV / f"gpu{i}"
        if not dev.exists():
            os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))

    HOSTS.write_text(
        "# written by scripts/dev-cluster; bind-mounted over /etc/hosts in every daemon\n"
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{HEAD_ADDR}\t{HEAD_HOST}\n" + "".join(f"{node_addr(x)}\t{x}\n" for x in nodes)
    )
    # No ::ffff:10.77.0.x lines: they would make `getent hosts node1` answer with an IPv6
    # address. Without them torch's TCPStore warns "The hostname of the client socket
    # cannot be retrieved" (a reverse lookup of an IPv4-mapped peer); harmless.

    sock = str(MUNGE_SOCK)
    last = nodes[-1][4:]
    nodelist = "node1" if n == 1 else f"node[1-{last}]"
    node_lines = "".join(
        f"NodeName={x} NodeHostname={x} NodeAddr={node_addr(x)} CPUs={CPUS_PER_NODE} "
        f"Gres=gpu:{GPUS_PER_NODE} State=UNKNOWN\n"
        for x in nodes
    )
    SLURM_CONF.write_text(f"""\
# slurm.conf written by olmoctl scripts/dev-cluster: {n} node(s) on one machine.
# Tuned for tests: failures are noticed in seconds, requeued jobs restart quickly.
ClusterName={CLUSTER_NAME}
SlurmctldHost={HEAD_HOST}({HEAD_ADDR})
SlurmctldPort={CTLD_PORT}
SlurmdPort={SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
# munge on a private socket; it has to be named twice (auth + accounting), otherwise
# slurmctld dies with "we have no TRES from it".
# cred_expire=10: a requeued job waits requeue time + cred_expire + 1 s before it can
# start again (default 120 -> 121 s; here 11 s).
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock},cred_expire=10
AccountingStoragePass={sock}
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost={HEAD_ADDR}
AccountingStoragePort={DBD_PORT}
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# no cgroups: processes are tracked through /proc, tasks are not bound
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Start jobs as soon as they can run: batch jobs are not batched up (default delay 3 s),
# the main loop and the backfill loop test pending jobs every 2 s / 1 s (defaults 60 / 30),
# so a requeued job starts right after its hold and a --begin job at its time.
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
PriorityType=priority/basic
# Nodes declare more CPUs (and gres) than the machine has.
SlurmdParameters=config_overrides
GresTypes=gpu
StateSaveLocation={STATE}/slurmctld
SlurmdSpoolDir={STATE}/slurmd-%n
SlurmctldPidFile={RUN}/slurmctld.pid
SlurmdPidFile={RUN}/slurmd-%n.pid
SlurmctldLogFile={LOG}/slurmctld.log
SlurmdLogFile={LOG}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# Failure detection: a node that stops answering is NOT_RESPONDING after a few seconds
# and DOWN (its jobs NODE_FAIL) after SlurmdTimeout; messages time out after MessageTimeout.
SlurmdTimeout=5
MessageTimeout=5
SlurmctldTimeout=10
TCPTimeout=2
# A node that registers again (slurmd restarted, network healed) returns to service at once.
ReturnToService=2
# SIGTERM -> SIGKILL grace at job end / time limit / scancel.
KillWait=2
# Batch jobs are requeued on node failure unless --no-requeue.
JobRequeue=1
InactiveLimit=0
MinJobAge=300
MaxArraySize=64
PropagateResourceLimits=NONE
MailProg=/bin/true
{node_lines}PartitionName={PARTITION} Nodes={nodelist} Default=YES MaxTime=02:00:00 State=UP
""")
    (ETC / "gres.conf").write_text(
        f"# fake GPUs: null character devices\nNodeName={nodelist} Name=gpu "
        f"File={DEV}/gpu[0-{GPUS_PER_NODE - 1}]\n"
    )
    dbd = ETC / "slurmdbd.conf"  # slurmdbd reads it from the folder of $SLURM_CONF
    dbd.write_text(f"""\
# slurmdbd.conf written by olmoctl scripts/dev-cluster (must be mode 600)
AuthType=auth/munge
AuthInfo=socket={sock}
DbdHost={HEAD_HOST}
DbdPort={DBD_PORT}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={MYSQL_PORT}
StorageUser=slurm
StoragePass={db_pass}
StorageLoc=slurm_acct_db
LogFile={LOG}/slurmdbd.log
PidFile={RUN}/slurmdbd.pid
DebugLevel=info
""")
    dbd.chmod(0o600)
    write_wrappers(nodes)


def write_wrappers(nodes: list[str]) -> None:
    ours = " ".join(f"/run/netns/{ns}" for ns in [HEAD_NS, *map(ns_of, nodes)])
    for name in CLIENTS:
        path = BIN / name
        path.write_text(f"""#!/bin/bash
# written by olmoctl scripts/dev-cluster: /usr/bin/{name} against the dev cluster in {DIR}
export SLURM_CONF={shlex.quote(str(SLURM_CONF))}
# already inside one of the cluster's namespaces (e.g. in a job)? run it right here
for ns in {ours}; do
  if [[ /proc/self/ns/net -ef $ns ]]; then exec /usr/bin/{name} "$@"; fi
done
if [[ ! -e /run/netns/{HEAD_NS} ]]; then
  echo "{name}: the dev cluster in {DIR} is not running (scripts/dev-cluster up)" >&2
  exit 1
fi
exec /usr/bin/nsenter --net=/run/netns/{HEAD_NS} -- /usr/bin/{name} "$@"
""")
        path.chmod(0o755)
