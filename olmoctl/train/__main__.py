"""`python -m olmoctl.train RUN_DIR/spec.json` (or `RECIPE.yaml --run-dir DIR`): one rank of
the job, under srun, torchrun, submitit or alone. Exit statuses:
olmoctl.train.runtime.exit_codes."""

import os
import sys

from olmoctl.train.run import main

status = main()
# Everything is written and closed by now (run_job's finally). Skip the interpreter's
# teardown: destroying c10d/gloo objects at exit, after a peer rank has already gone, can
# abort (SIGABRT "terminate called without an active exception") and replace the status.
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
