"""What every part of the job shares: its config from spec.json (config), the process group
and the node list (distributed), the stop flag set by signals (signals), exit statuses
(exit_codes, the contract with the batch script and the launcher) and fault injection for
tests (faults).

The bottom of train: imports nothing else of train.
"""
