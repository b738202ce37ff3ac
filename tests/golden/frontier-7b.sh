#!/bin/bash
# Rendered by olmoctl 0.1.0 for run 7b-frontier: recipe 7b on cluster frontier.
# Re-render instead of editing: olmoctl render 7b --cluster frontier --nodes 2
#SBATCH --job-name=7b-frontier
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
#SBATCH --output=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/7b-frontier/logs/slurm-%j.out
#SBATCH --network=disable_rdzv_get

set -euo pipefail

module load PrgEnv-gnu/8.7.0 cpe/26.03 rocm/7.1.1 rccl-net-plugin craype-accel-amd-gfx90a

# Environment from the cluster profile frontier.
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

export OLMOCTL_RUN_DIR=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/7b-frontier
export OLMOCTL_RUN_NAME=7b-frontier
# submitit's job side reads this to know it runs under Slurm.
export SUBMITIT_EXECUTOR=slurm
# Rank 0's host and a port derived from the job id, so concurrent jobs never collide.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_ADDR
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
mkdir -p /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/7b-frontier/logs

srun \
  --ntasks-per-node=8 \
  --cpus-per-task=7 \
  --gpu-bind=closest \
  --kill-on-bad-exit=1 \
  --output=/lustre/orion/project_465000000/scratch/alice/olmoctl/runs/7b-frontier/logs/%j-rank%t.out \
  python -u -m submitit.core._submit /lustre/orion/project_465000000/scratch/alice/olmoctl/runs/7b-frontier/submitit
