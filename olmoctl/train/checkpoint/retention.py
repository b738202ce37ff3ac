"""Which checkpoints to keep, as OLMo does: the newest `keep_last` ephemeral ones plus every
checkpoint whose step is a multiple of `permanent_interval_steps` (OLMo's save_interval vs
save_interval_unsharded). Pure functions of the steps, so the launcher can say which are
permanent from the recipe alone (olmoctl.schemas.contract.is_permanent_step).

Deletion runs only on the checkpoint writer, after a save has committed, so it never races
an in-flight save (at most one save is in flight; see olmoctl.train.checkpoint.async_save).
"""

from __future__ import annotations

from collections.abc import Iterable

from olmoctl.schemas.contract import is_permanent_step


def to_remove(steps: Iterable[int], keep_last: int, permanent_every: int) -> list[int]:
    """The complete checkpoints' steps to delete: every ephemeral one but the newest
    `keep_last` (permanent ones are never deleted and do not count against keep_last)."""
    ephemeral = sorted(s for s in steps if not is_permanent_step(s, permanent_every))
    return ephemeral[:-keep_last] if keep_last > 0 else ephemeral


__all__ = ["is_permanent_step", "to_remove"]
