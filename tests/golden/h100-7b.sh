#!/bin/bash
# Rendered by olmoctl 0.1.0 for run 7b-h100: recipe 7b on cluster h100.
# Re-render instead of editing: olmoctl render 7b --cluster h100 --nodes 2
#SBATCH --job-name=7b-h100
#SBATCH --partition=gpu
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=12
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --time=24:00:00
#SBATCH --signal=USR2@180
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=/shared/alice/olmoctl/runs/7b-h100/logs/slurm-%j.out

set -euo pipefail

# Environment from the cluster profile h100.
export NCCL_IB_HCA="mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_6,mlx5_7"
export TORCH_NCCL_ASYNC_ERROR_HANDLING="1"
export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"

export OLMOCTL_RUN_DIR=/shared/alice/olmoctl/runs/7b-h100
export OLMOCTL_RUN_NAME=7b-h100
# submitit's job side reads this to know it runs under Slurm.
export SUBMITIT_EXECUTOR=slurm
# Rank 0's host and a port derived from the job id, so concurrent jobs never collide.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_ADDR
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
mkdir -p /shared/alice/olmoctl/runs/7b-h100/logs

srun \
  --ntasks-per-node=8 \
  --cpus-per-task=12 \
  --gpu-bind=none \
  --kill-on-bad-exit=1 \
  --output=/shared/alice/olmoctl/runs/7b-h100/logs/%j-rank%t.out \
  python -u -m submitit.core._submit /shared/alice/olmoctl/runs/7b-h100/submitit
