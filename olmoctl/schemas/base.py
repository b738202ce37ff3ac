"""Common base for every schema: unknown keys are errors, values are checked on assignment,
numbers are finite and strings bounded (schemas/bounds.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    # No inf/nan in any float (they pass every range check and fail far later); ints use
    # bounds.Int (int64, never a boolean); strings are bounded by their shellsafe kind.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False
    )


# Values that land in a batch script unquoted by design (names, accounts, partitions):
# letters, digits and a few separators only, so no shell metacharacter can slip in.
SAFE_TOKEN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
