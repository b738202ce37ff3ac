"""Is there room for a checkpoint again? `watch` retries an attempt that ended on a full
checkpoint filesystem (class STORAGE) only once the filesystem holding the run's
checkpoints has the space the job said it needs, with a margin; until then it reports the
run once and leaves it waiting (or for `olmoctl resume RUN` after space was freed)."""

from __future__ import annotations

from olmoctl.diskspace import free_bytes
from olmoctl.schemas.contract import checkpoints_root

MARGIN = 1.25  # other writers share the filesystem; the estimate is the state's size


def room_for(run_dir: str, needed: int | None, remote: bool) -> bool | None:
    """True/False when the space can be seen from here, None when not (a remote cluster's
    filesystem, or an ending that did not say how much it needs)."""
    if remote or needed is None:
        return None
    free = free_bytes(checkpoints_root(run_dir))  # the nearest existing folder answers
    return None if free is None else free >= needed * MARGIN
