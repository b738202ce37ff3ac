"""Is there room for a checkpoint again? `watch` retries an attempt that ended on a full
checkpoint filesystem (class STORAGE) only once the filesystem holding the run's
checkpoints has the space the job said it needs, with a margin; until then it reports the
run once and leaves it waiting (or for `olmoctl resume RUN` after space was freed)."""

from __future__ import annotations

from olmoctl.backends.files import RunFiles
from olmoctl.schemas.contract import checkpoints_root

MARGIN = 1.25  # other writers share the filesystem; the estimate is the state's size


def room_for(run_dir: str, needed: int | None, files: RunFiles) -> bool | None:
    """True/False when the cluster's filesystem answered (locally, or through the ssh
    login node's free_space for a remote cluster), None when it did not or the ending did
    not say how much it needs."""
    if needed is None:
        return None
    free = files.free_bytes(str(checkpoints_root(run_dir)))  # the nearest existing folder
    return None if free is None else free >= needed * MARGIN
