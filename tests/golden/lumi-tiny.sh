#!/bin/bash
# Rendered by olmoctl 0.1.0 for run tiny-lumi: recipe tiny on cluster lumi.
# Re-render instead of editing: olmoctl render tiny --cluster lumi --nodes 1
#SBATCH --job-name=tiny-lumi
#SBATCH --account=project_465000000
#SBATCH --partition=standard-g
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=7
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --time=48:00:00
#SBATCH --time-min=24:00:00
#SBATCH --signal=USR2@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=/scratch/project_465000000/alice/olmoctl/runs/tiny-lumi/logs/slurm-%j.out

set -euo pipefail

module load LUMI/22.08 partition/G

# Environment from the cluster profile lumi.
export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"
export MPICH_GPU_SUPPORT_ENABLED="1"
export NCCL_SOCKET_IFNAME="hsn"
export NCCL_NET_GDR_LEVEL="3"
export MIOPEN_USER_DB_PATH="/tmp/$USER-miopen-cache-$SLURM_JOB_ID"
export MIOPEN_CUSTOM_CACHE_DIR="$MIOPEN_USER_DB_PATH"
export CXI_FORK_SAFE="1"
export CXI_FORK_SAFE_HP="1"
export FI_CXI_DISABLE_CQ_HUGETLB="1"
export GPU_MAX_HW_QUEUES="8"
export FI_CXI_DEFAULT_CQ_SIZE="131072"
export HF_DATASETS_OFFLINE="1"

# Inside the container only (its runtime reads them from these names).
export SINGULARITYENV_LD_LIBRARY_PATH="/usr/local/lib:/opt/cray/libfabric/1.15.2.0/lib64"
export SINGULARITYENV_ROCM_PATH="/opt/rocm"

export OLMOCTL_RUN_DIR=/scratch/project_465000000/alice/olmoctl/runs/tiny-lumi
export OLMOCTL_RUN_NAME=tiny-lumi
# submitit's job side reads this to know it runs under Slurm.
export SUBMITIT_EXECUTOR=slurm
# Rank 0's host and a port derived from the job id, so concurrent jobs never collide.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_ADDR
export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"
mkdir -p /scratch/project_465000000/alice/olmoctl/runs/tiny-lumi/logs

srun \
  --ntasks-per-node=8 \
  --cpus-per-task=7 \
  --cpu-bind=mask_cpu:0x00fe000000000000,0xfe00000000000000,0x0000000000fe0000,0x00000000fe000000,0x00000000000000fe,0x000000000000fe00,0x000000fe00000000,0x0000fe0000000000 \
  --distribution=block:block \
  --kill-on-bad-exit=1 \
  --output=/scratch/project_465000000/alice/olmoctl/runs/tiny-lumi/logs/%j-rank%t.out \
  singularity exec \
    -B "/project/project_465000000:/project/project_465000000" \
    -B "/flash/project_465000000:/flash/project_465000000" \
    -B "/scratch/project_465000000:/scratch/project_465000000" \
    -B "/var/spool/slurmd" \
    -B "/opt/cray" \
    -B "/usr/lib64/libcxi.so.1" \
    -B "/usr/lib64/libjansson.so.4" \
    -B "/usr/lib64/libjson-c.so.3" \
    "/project/project_465000000/containers/olmo-rocm.sif" \
  python -u -m submitit.core._submit /scratch/project_465000000/alice/olmoctl/runs/tiny-lumi/submitit
