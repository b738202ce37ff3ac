"""Common base for every schema: unknown keys are errors, values are checked on assignment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# Values that land in a batch script unquoted by design (names, accounts, partitions):
# letters, digits and a few separators only, so no shell metacharacter can slip in.
SAFE_TOKEN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
