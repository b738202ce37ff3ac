"""devcluster: a real Slurm cluster on this one machine (Debian 12, run as root).

One network namespace per node (`odc-node1` ... with address 10.77.0.11 ..., hostname
node1 ...) and a head namespace (`odc-head`, 10.77.0.1, hostname `head`) that holds munged,
MariaDB, slurmdbd and slurmctld. A bridge inside the head namespace joins them. Nothing is
created in, or listens on, the machine's own network namespace. Each daemon runs in its own
UTS + mount namespace (hostname, and a bind-mounted /etc/hosts that names head and every
node), so multi-node jobs rendezvous on a real hostname. Every daemon runs in the foreground
as a child we record (pid + start time); `down` stops only those and whatever runs inside
the namespaces this package created.

Clients: $DIR/bin holds wrappers (sbatch, srun, sacct, ...) that enter the head namespace
(or run directly when already inside one of ours, e.g. in a job) with SLURM_CONF set, so
`PATH=$DIR/bin:$PATH SLURM_CONF=$DIR/etc/slurm.conf` is all a process needs. State,
configs, logs: ${OLMOCTL_DEV_CLUSTER_DIR:-/tmp/olmoctl-dev-cluster}.

It runs with the system's python3 before any virtual environment exists (scripts/setup,
scripts/test call it first), so: Python 3 standard library only, and nothing here imports
olmoctl. The entry point is scripts/dev-cluster; modules, from the bottom up:

    settings   the folder, namespace prefix, addresses, ports, file paths, node naming
    proc       run a command, wait for a condition, recorded processes (pid + start
               time), the lock, the record (cluster.json)
    packages   install the Debian packages the cluster needs (scripts/debian-packages.txt)
    configs    slurm.conf, slurmdbd.conf, gres.conf, hosts, munge key, client wrappers
    clients    run a Slurm client against the cluster, read node states
    network    namespaces, the bridge, each node's link
    cgroups    the per-node CPU quota behind slow-node
    daemons    what each daemon runs, starting them in order and waiting until ready
    lifecycle  up, down, status, teardown, "is it running"
    faults     kill/revive, partition/heal, drain, slow, fail-node-check, restore,
               restart-controller
    cli        the argument parser and main()
"""
