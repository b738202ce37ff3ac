#!/bin/bash
# Rendered by olmoctl 0.1.0 for run 7b-local: recipe 7b on cluster local.
# Re-render instead of editing: olmoctl render --from-spec /home/alice/olmoctl-runs/local/7b-local/spec.json
# (spec.json, written at launch, holds recipe, cluster, nodes, -o overrides, exclusions)

set -euo pipefail

# Environment from the cluster profile local.
export OMP_NUM_THREADS="1"

export OLMOCTL_RUN_DIR=/home/alice/olmoctl-runs/local/7b-local
export OLMOCTL_RUN_NAME=7b-local
export MASTER_ADDR=127.0.0.1
export MASTER_PORT=29500
mkdir -p /home/alice/olmoctl-runs/local/7b-local/logs

python -u -m olmoctl.train /home/alice/olmoctl-runs/local/7b-local/spec.json
