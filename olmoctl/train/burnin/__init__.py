"""Checks before step 1 on every node: the burn-in step the batch script runs
(`python -m olmoctl.train.burnin`: step), its local and collective checks (checks), the
verdict (judge), and `olmoctl doctor`'s job side (`python -m olmoctl.train.burnin.preflight`:
preflight, preflight_checks).

May import train.observe, train.data and train.runtime.
"""
