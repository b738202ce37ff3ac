"""`python -m olmoctl.train RUN_DIR/spec.json` (or `RECIPE.yaml --run-dir DIR`): one rank of
the job, under srun, torchrun, submitit or alone. Exit statuses: olmoctl.train.exit_codes."""

import sys

from olmoctl.train.run import main

sys.exit(main())
