#!/bin/bash
# Rendered by olmoctl 0.1.0 for run 7b-a100: recipe 7b on cluster a100.
# Re-render instead of editing: olmoctl render 7b --cluster a100 --nodes 2
#SBATCH --job-name=7b-a100
#SBATCH --partition=gpu
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --time=24:00:00
#SBATCH --signal=B:USR2@180
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=/shared/alice/olmoctl/runs/7b-a100/logs/slurm-%j.out

set -euo pipefail

# Environment from the cluster profile a100.
export NCCL_IB_HCA="mlx5"
export TORCH_NCCL_ASYNC_ERROR_HANDLING="1"
export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"

export OLMOCTL_RUN_DIR=/shared/alice/olmoctl/runs/7b-a100
export OLMOCTL_RUN_NAME=7b-a100
# submitit's job side reads this to know it runs under Slurm.
export SUBMITIT_EXECUTOR=slurm
# Rank 0's host and a port derived from the job id, so concurrent jobs never collide.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_ADDR
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
mkdir -p /shared/alice/olmoctl/runs/7b-a100/logs

# Stopping for the time limit and requeueing happen here, on the batch host, never inside
# the job (which may run in a container without Slurm's clients): Slurm sends USR2 to this
# script (--signal=B:USR2@N), which forwards it to the job step, waits for the ranks to save
# and stop (exit 42, or rank 0's mark after the save) and puts the job back in the queue.
requeue_mark=/shared/alice/olmoctl/runs/7b-a100/requeue-ready
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

# requeue_from_host [NODE,...]: back to the queue with the same job id (the next start has
# SLURM_RESTART_COUNT+1), kept off NODE,... as well. Slurm refuses ExcNodeList on a running
# job but takes it once the requeue is under way, and the job cannot start again before
# this script has ended.
# shellcheck disable=SC2120  # NODE,... is for callers such as a burn-in check
requeue_from_host() {
  scontrol requeue "$SLURM_JOB_ID" || return 1
  if [ -n "${1:-}" ]; then
    local current
    current="$(scontrol -o show job "$SLURM_JOB_ID" | sed -n 's/.* ExcNodeList=\([^ ]*\).*/\1/p')"
    if [ "$current" = "(null)" ]; then current=""; fi
    scontrol update JobId="$SLURM_JOB_ID" ExcNodeList="${current:+$current,}$1"
  fi
}

srun \
  --ntasks-per-node=8 \
  --cpus-per-task=8 \
  --gpu-bind=none \
  --kill-on-bad-exit=1 \
  --output=/shared/alice/olmoctl/runs/7b-a100/logs/%j-rank%t.out \
  python -u -m submitit.core._submit /shared/alice/olmoctl/runs/7b-a100/submitit &
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
