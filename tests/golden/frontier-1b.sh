#!/bin/bash
# Rendered by olmoctl 0.1.0 for run 1b-frontier: recipe 1b on cluster frontier.
# Re-render instead of editing: olmoctl render 1b --cluster frontier --nodes 2
#SBATCH --job-name=1b-frontier
#SBATCH --account=project_465000000
#SBATCH --partition=batch
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=7
#SBATCH --exclusive
#SBATCH --time=02:00:00
#SBATCH --signal=USR2@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/1b-frontier/logs/slurm-%j.out

set -euo pipefail

module load PrgEnv-gnu rocm/6.0.0 craype-accel-amd-gfx90a

# Environment from the cluster profile frontier.
export NCCL_SOCKET_IFNAME="hsn0,hsn1,hsn2,hsn3"
export NCCL_NET_GDR_LEVEL="3"
export FI_CXI_ATS="0"
export FI_CXI_DISABLE_CQ_HUGETLB="1"
export MIOPEN_USER_DB_PATH="/tmp/$USER-miopen-cache-$SLURM_JOB_ID"
export MIOPEN_CUSTOM_CACHE_DIR="$MIOPEN_USER_DB_PATH"
export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"

export OLMOCTL_RUN_DIR=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/1b-frontier
export OLMOCTL_RUN_NAME=1b-frontier
# submitit's job side reads this to know it runs under Slurm.
export SUBMITIT_EXECUTOR=slurm
# Rank 0's host and a port derived from the job id, so concurrent jobs never collide.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_ADDR
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
mkdir -p /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/1b-frontier/logs

srun \
  --ntasks-per-node=8 \
  --cpus-per-task=7 \
  --gpu-bind=closest \
  --kill-on-bad-exit=1 \
  --output=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/1b-frontier/logs/%j-rank%t.out \
  python -u -m submitit.core._submit /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/1b-frontier/submitit
