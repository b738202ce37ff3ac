#!/bin/bash
# Rendered by olmoctl 0.1.0 for run tiny-frontier: recipe tiny on cluster frontier.
# Re-render instead of editing: olmoctl render --from-spec /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/spec.json
# (spec.json, written at launch, holds recipe, cluster, nodes, -o overrides, exclusions)
#SBATCH --job-name=tiny-frontier
#SBATCH --account=project_465000000
#SBATCH --partition=batch
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=7
#SBATCH --exclusive
#SBATCH --time=02:00:00
#SBATCH --signal=B:USR2@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/logs/slurm-%j.out
#SBATCH --network=disable_rdzv_get

set -euo pipefail

# `module` is a shell function that a login shell's start-up defines (Lmod's init, from
# /etc/profile.d/); a job submitted from a non-login shell (olmoctl's remote server over SSH,
# cron) may not have it. Then the site's init, the profile's module_init, is sourced here.
if ! type module >/dev/null 2>&1; then
  olmoctl_module_init="/etc/profile"
  if [[ ! -f $olmoctl_module_init || ! -r $olmoctl_module_init ]]; then
    echo "olmoctl: 'module' is not defined here and module_init $olmoctl_module_init is not a readable file: set module_init in the cluster profile to the site's module init" >&2
    exit 1
  fi
  # Start-up files read unset variables and run tests that fail: not under set -eu.
  set +eu
  # shellcheck source=/dev/null  # the site's file, on the nodes
  source "$olmoctl_module_init"
  set -eu
  if ! type module >/dev/null 2>&1; then
    echo "olmoctl: 'module' is still not defined after sourcing $olmoctl_module_init: set module_init in the cluster profile to the file that defines it (Lmod: \$LMOD_PKG/init/bash)" >&2
    exit 1
  fi
fi

module load PrgEnv-gnu/8.7.0 cpe/26.03 rocm/7.1.1 rccl-net-plugin craype-accel-amd-gfx90a

# Environment from the cluster profile frontier.
export NCCL_NET="AWS Libfabric"
export LD_LIBRARY_PATH="$CRAY_LD_LIBRARY_PATH:$LD_LIBRARY_PATH"
export NCCL_CROSS_NIC="1"
export NCCL_NET_GDR_LEVEL="PHB"
export NCCL_SOCKET_IFNAME="hsn0,hsn1,hsn2,hsn3"
export HSA_FORCE_FINE_GRAIN_PCIE="1"
export FI_MR_CACHE_MONITOR="kdreg2"
export FI_CXI_DISABLE_HOST_REGISTER="1"
export FI_CXI_DEFAULT_CQ_SIZE="131072"
export FI_CXI_RDZV_PROTO="alt_read"
export FI_CXI_RDZV_EAGER_SIZE="0"
export FI_CXI_RDZV_THRESHOLD="0"
export FI_CXI_RDZV_GET_MIN="0"
export FI_CXI_DEFAULT_TX_SIZE="2048"
export FI_CXI_RX_MATCH_MODE="hybrid"
export MIOPEN_USER_DB_PATH="/tmp/$USER-miopen-cache-$SLURM_JOB_ID"
export MIOPEN_CUSTOM_CACHE_DIR="$MIOPEN_USER_DB_PATH"
export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"

# The ranks' Python (the profile's python_env): srun passes this environment to every rank.
module load miniforge3
# Activation scripts read variables that may be unset: not under set -u.
set +u
# shellcheck source=/dev/null  # the env's own script, on the nodes
source activate "/lustre/orion/project_465000000/proj-shared/alice/envs/olmoctl"
set -u

export OLMOCTL_RUN_DIR=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier
export OLMOCTL_RUN_NAME=tiny-frontier
# submitit's job side reads this to know it runs under Slurm.
export SUBMITIT_EXECUTOR=slurm
# Rank 0's host and a port derived from the job id, so concurrent jobs never collide. The
# whole list is read, then its first line taken: no pipe into a reader that stops early
# (`| head -n 1` kills scontrol with SIGPIPE at large node counts, and pipefail aborts).
olmoctl_hostnames="$(scontrol show hostnames "$SLURM_JOB_NODELIST")" || {
  echo "olmoctl: scontrol show hostnames $SLURM_JOB_NODELIST failed" >&2
  exit 1
}
MASTER_ADDR="${olmoctl_hostnames%%$'\n'*}"
unset olmoctl_hostnames
export MASTER_ADDR
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"

# requeue_from_host [NODE,...]: back to the queue with the same job id (the next start has
# SLURM_RESTART_COUNT+1), kept off NODE,... as well (the burn-in's bad nodes). Slurm refuses
# ExcNodeList on a running job but takes it once the requeue is under way (retried while it
# gets there), and the job cannot start again before this script has ended.
requeue_from_host() {
  scontrol requeue "$SLURM_JOB_ID" || return 1
  if [ -n "${1:-}" ]; then
    local current _
    # Read whole, then parsed (no pipe: under pipefail and set -e a failing scontrol would
    # end the script here, its message lost).
    if ! current="$(scontrol -o show job "$SLURM_JOB_ID")"; then
      echo "olmoctl: requeued, but could not read job $SLURM_JOB_ID to keep it off $1" >&2
      return 0
    fi
    current="$(sed -n 's/.* ExcNodeList=\([^ ]*\).*/\1/p' <<<"$current")"
    if [ "$current" = "(null)" ]; then current=""; fi
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      scontrol update JobId="$SLURM_JOB_ID" ExcNodeList="${current:+$current,}$1" && return 0
      sleep 1
    done
    echo "olmoctl: requeued, but could not keep job $SLURM_JOB_ID off $1" >&2
  fi
}
mkdir -p /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/logs

# Burn-in (olmoctl.train.burnin): every node of the allocation is checked before step 1 (in
# the same container and environment); training then runs on the best 1 of the
# 1. A bad node is left out (a spare takes its place) or, without enough
# healthy nodes, the job requeues itself once without every bad node found.
olmoctl_restart="${OLMOCTL_INCARNATION:-${SLURM_RESTART_COUNT:-0}}"
OLMOCTL_BURNIN_VERDICT=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/burnin/"${SLURM_JOB_ID}-${olmoctl_restart}.verdict"
export OLMOCTL_BURNIN_VERDICT
mkdir -p /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/burnin
rm -f "$OLMOCTL_BURNIN_VERDICT"
# srun says here (this script's output) when a task ends; the burn-in's rank 0 reads what it
# writes from now on, so a node whose task died at start is judged at once, not at the
# start timeout (olmoctl/train/burnin/gone.py).
OLMOCTL_BATCH_LOG="$(readlink /proc/$$/fd/2 2>/dev/null || true)"
OLMOCTL_BATCH_LOG_FROM="$(stat -c %s -- "$OLMOCTL_BATCH_LOG" 2>/dev/null || echo 0)"
export OLMOCTL_BATCH_LOG OLMOCTL_BATCH_LOG_FROM
srun \
  --ntasks-per-node=8 \
  --cpus-per-task=7 \
  --gpu-bind=closest \
  --kill-on-bad-exit=0 \
  --time=12 \
  python -u -m olmoctl.train.burnin /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/spec.json &
olmoctl_burnin_pid=$!
# Wait for the verdict (or the step's end); a task hung past the verdict is not waited on.
while kill -0 "$olmoctl_burnin_pid" 2>/dev/null && [[ ! -s $OLMOCTL_BURNIN_VERDICT ]]; do
  sleep 1
done
for _ in 1 2 3 4 5 6 7 8 9 10; do
  kill -0 "$olmoctl_burnin_pid" 2>/dev/null || break
  sleep 1
done
kill "$olmoctl_burnin_pid" 2>/dev/null || true
wait "$olmoctl_burnin_pid" || true
olmoctl_action="" olmoctl_use="" olmoctl_exclude=""
if [[ -s $OLMOCTL_BURNIN_VERDICT ]]; then
  while IFS="=" read -r olmoctl_key olmoctl_value; do
    case "$olmoctl_key" in
      action) olmoctl_action="$olmoctl_value" ;;
      use) olmoctl_use="$olmoctl_value" ;;
      exclude) olmoctl_exclude="$olmoctl_value" ;;
    esac
  done <"$OLMOCTL_BURNIN_VERDICT"
fi
# Node names from the verdict reach srun and scontrol: each must be a Slurm host name
# (olmoctl/schemas/shellsafe.py's HOST_RE), and `use` must name exactly 1 of them.
olmoctl_host_re='^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'
olmoctl_hosts() {
  local -a olmoctl_list
  local olmoctl_host
  IFS=, read -r -a olmoctl_list <<<"$1"
  for olmoctl_host in "${olmoctl_list[@]}"; do
    [[ $olmoctl_host =~ $olmoctl_host_re ]] || return 1
  done
  echo "${#olmoctl_list[@]}"
}
if ! olmoctl_n_use="$(olmoctl_hosts "$olmoctl_use")" || ! olmoctl_hosts "$olmoctl_exclude" >/dev/null; then
  echo "olmoctl: burn-in: the verdict names something that is not a host name; ignored" >&2
  olmoctl_action=""
fi
if [[ $olmoctl_action == train && $olmoctl_n_use != 1 ]]; then
  olmoctl_action=""
fi
if [[ $olmoctl_action == requeue ]]; then
  # A partition too small to hold the job without those nodes would keep it pending forever.
  olmoctl_n_nodes="$({ sinfo -h -p "${SLURM_JOB_PARTITION:-}" -o %D 2>/dev/null || true; } | awk '{n += $1} END {print n + 0}')"
  olmoctl_n_out="$(olmoctl_hosts "$olmoctl_exclude" || echo 0)"
  if ((olmoctl_n_nodes > 0 && olmoctl_n_nodes - olmoctl_n_out < 1)); then
    echo "olmoctl: burn-in: partition has too few nodes to requeue without $olmoctl_exclude; training on the allocation as it is" >&2
    olmoctl_action=""
  fi
fi
case "$olmoctl_action" in
  train)
    MASTER_ADDR="${olmoctl_use%%,*}"
    echo "olmoctl: burn-in: training on $olmoctl_use" ;;
  requeue)
    echo "olmoctl: burn-in: requeueing job $SLURM_JOB_ID without $olmoctl_exclude"
    # scontrol requeue sends this script TERM (then KILL after KillWait): ignore it while the
    # excluded nodes are set.
    trap "" TERM
    requeue_from_host "$olmoctl_exclude"
    exit 0 ;;
  fail)
    echo "olmoctl: burn-in: not starting (see the burn-in lines above)" >&2
    exit 1 ;;
  *)
    olmoctl_use=""
    echo "olmoctl: burn-in gave no usable verdict: training on the allocation as it is" >&2 ;;
esac

# Stopping for the time limit and requeueing happen here, on the batch host, never inside
# the job (which may run in a container without Slurm's clients): Slurm sends USR2 to this
# script (--signal=B:USR2@N), which forwards it to the job step, waits for the ranks to save
# and stop (exit 42, or rank 0's mark after the save) and puts the job back in the queue.
requeue_mark=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/requeue-ready
rm -f "$requeue_mark"
step_pid=""
stopping=""
trapped=""
# shellcheck disable=SC2317  # a trap handler
forward_usr2() {
  trapped=1
  stopping="${stopping:-USR2}"
  if [ -n "$step_pid" ]; then kill -USR2 "$step_pid" 2>/dev/null || true; fi
}
# TERM: Slurm itself is ending the job (scancel, preemption, `scontrol requeue`, the time
# limit) and signals the ranks directly; whether it comes back is Slurm's decision.
trap 'trapped=1; stopping=TERM' TERM
trap forward_usr2 USR2

srun \
  --ntasks-per-node=8 \
  --cpus-per-task=7 \
  --gpu-bind=closest \
  --nodes=1 \
  --ntasks=8 \
  ${olmoctl_use:+"--nodelist=$olmoctl_use"} \
  --kill-on-bad-exit=1 \
  --output=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/logs/%j-rank%t.out \
  python -u -m submitit.core._submit /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/tiny-frontier/submitit &
step_pid=$!
if [ "$stopping" = USR2 ]; then kill -USR2 "$step_pid" 2>/dev/null || true; fi

# The step's status: a trapped signal interrupts `wait`, so wait again while it runs.
status=""
while [ -z "$status" ]; do
  trapped=""
  wait "$step_pid" && rc=0 || rc=$?
  if [ -n "$trapped" ] && [ "$rc" -gt 128 ]; then continue; fi
  status=$rc
done
# --kill-on-bad-exit may kill slower ranks once the first exits 42: rank 0's mark counts.
# A rank not listening for USR2 yet (starting) dies of it: requeued all the same, the next
# start resumes from the newest complete checkpoint.
if [ -e "$requeue_mark" ]; then status=42; fi
if [ "$stopping" = USR2 ] && [ "$status" = "$((128 + $(kill -l USR2)))" ]; then
  status=42
fi
if [ "$status" = 42 ] && [ "$stopping" != TERM ]; then
  if [ "${SLURM_RESTART_COUNT:-0}" -ge 3 ]; then
    echo "olmoctl: not requeued: job $SLURM_JOB_ID was requeued ${SLURM_RESTART_COUNT:-0} times (max_requeues 3)" >&2
  elif requeue_from_host; then
    echo "olmoctl: the ranks saved and stopped; job $SLURM_JOB_ID requeued from $(hostname)"
    exit 0
  fi
fi
exit "$status"
