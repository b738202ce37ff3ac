"""`python -m olmoctl.train.burnin RUN_DIR/spec.json`: the burn-in step (see step.py)."""

import sys

from olmoctl.train.burnin.step import main

sys.exit(main())
