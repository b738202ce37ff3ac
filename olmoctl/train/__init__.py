"""The training job: OLMo model, FSDP2, deterministic token data, DCP checkpoints, events.

Importing this package is cheap (no torch): the heavy modules are imported by the entry
points (`python -m olmoctl.train`, `olmoctl.train.submit_entry.TrainJob`) when they run.
"""

from olmoctl.train.runtime.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_COMPLETED,
    EXIT_ERROR,
    EXIT_REQUEUE,
    EXIT_STORAGE,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_COMPLETED", "EXIT_ERROR", "EXIT_REQUEUE", "EXIT_STORAGE"]
