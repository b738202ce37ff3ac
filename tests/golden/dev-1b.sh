#!/bin/bash
# Rendered by olmoctl 0.1.0 for run 1b-dev: recipe 1b on cluster dev.
# Re-render instead of editing: olmoctl render 1b --cluster dev --nodes 2
#SBATCH --job-name=1b-dev
#SBATCH --partition=dev
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=1
#SBATCH --time=00:10:00
#SBATCH --signal=USR2@20
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=/home/alice/olmoctl-runs/dev/1b-dev/logs/slurm-%j.out

set -euo pipefail

# Environment from the cluster profile dev.
export OMP_NUM_THREADS="1"

export OLMOCTL_RUN_DIR=/home/alice/olmoctl-runs/dev/1b-dev
export OLMOCTL_RUN_NAME=1b-dev
# submitit's job side reads this to know it runs under Slurm.
export SUBMITIT_EXECUTOR=slurm
# Rank 0's host and a port derived from the job id, so concurrent jobs never collide.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_ADDR
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
mkdir -p /home/alice/olmoctl-runs/dev/1b-dev/logs

srun \
  --ntasks-per-node=1 \
  --cpus-per-task=1 \
  --kill-on-bad-exit=1 \
  --output=/home/alice/olmoctl-runs/dev/1b-dev/logs/%j-rank%t.out \
  python -u -m submitit.core._submit /home/alice/olmoctl-runs/dev/1b-dev/submitit
