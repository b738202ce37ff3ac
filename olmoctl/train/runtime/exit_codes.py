"""Exit statuses of the training job: the contract with the launcher (`olmoctl launch/watch`).

Every rank exits with the same status when it can (the decision to stop is all-reduced at a
step boundary). The `exiting` event in events.jsonl carries the same number as
`exit_status` together with a reason (completed | preempted | error).
"""

from __future__ import annotations

# Trained to the end of the budget; the last checkpoint is the final step. Do not requeue.
EXIT_COMPLETED = 0
# An unexpected failure (a traceback is in the rank's log). Classify before retrying.
EXIT_ERROR = 1
# Bad input: recipe/spec that does not fit, unreadable data, token id above the vocabulary,
# a checkpoint from another model shape. One line on stderr names the cause; retrying the
# same input fails again. (The same number as olmoctl.errors.UsageError.exit_code.)
EXIT_BAD_INPUT = 2
# SIGUSR2 or SIGTERM arrived; a complete checkpoint was saved at the next step boundary and
# the job stopped on purpose. Please requeue: the next attempt resumes from that checkpoint.
# (A site may also name it in Slurm's RequeueExit=42.)
EXIT_REQUEUE = 42
# The checkpoint filesystem is full (or over quota): a save failed, its torn folder was
# removed and the previous complete checkpoint is intact. One line on stderr says where,
# how much is needed and how much is free. Not a code error; retrying helps only once space
# exists (sysexits' EX_IOERR).
EXIT_STORAGE = 74
