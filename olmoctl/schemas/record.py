"""RUN_DIR/record.json, as typed models: what a run needs to be re-run exactly.

The launcher writes it (olmoctl.core.records.record, as plain JSON, unchanged on disk); readers
(`show`, `card`, `launch --from`, `render --diff`) parse it with `Record.of` and use typed
attributes. Reading is tolerant so that records of older and newer olmoctl versions read:
every field may be missing, unknown fields are kept (model_extra).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    # extra="allow": fields this version does not know are kept, not refused.
    # coerce_numbers_to_str: a job id or version written as a number still reads as text.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=True)


class Git(_Part):
    commit: str | None = None
    dirty: bool | None = None
    diff_sha256: str | None = None
    diff_file: str | None = None  # RUN_DIR/code/HASH.diff (the run directory is here)
    diff: str | None = None  # the diff itself (the run directory is remote)


class Code(_Part):
    """olmoctl.provenance.code_version()."""

    version: str | None = None
    source_sha256: str | None = None
    git: Git | None = None


class Versions(_Part):
    python: str | None = None
    torch: str | None = None
    cuda: str | None = None
    rocm: str | None = None
    numpy: str | None = None


class Devices(_Part):
    type: str | None = None
    name: str | None = None
    per_node: int | None = None
    count: int | None = None


class StartEnv(_Part):
    """What one job start reported (its `started` event)."""

    job_id: str | None = None
    started_ts: float | None = None
    start_step: int | None = None
    nodes: list[str] | None = None
    world_size: int | None = None
    versions: Versions | None = None
    devices: Devices | None = None
    code: Code | None = None


class Submission(_Part):
    attempt: int
    at: float | None = None
    host: str | None = None
    code: Code | None = None
    script_file: str | None = None
    script_sha256: str | None = None
    exclude_nodes: list[str] = Field(default_factory=list)


class AttemptRecord(_Part):
    """An attempt as the store has it (store.ATTEMPT_FIELDS), plus its script and starts."""

    attempt_no: int
    job_id: str | None = None
    restart_index: int | None = None
    state: str | None = None
    klass: str | None = None
    node_list: str | None = None
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: str | None = None
    reason: str | None = None
    first_step: int | None = None
    last_step: int | None = None
    script_file: str | None = None
    script_sha256: str | None = None
    launcher_code: Code | None = None
    env: list[StartEnv] = Field(default_factory=list)


class FileFingerprint(_Part):
    """olmoctl.provenance.fingerprint_file(): error instead of size/sha256 if unreadable."""

    name: str | None = None
    path: str | None = None
    size: int | None = None
    sha256: str | None = None
    method: str | None = None
    error: str | None = None


class DataFingerprint(_Part):
    files: list[FileFingerprint] = Field(default_factory=list)
    sha256: str | None = None


class DataRecord(_Part):
    synthetic: bool = False
    paths: list[str] = Field(default_factory=list)
    dtype: str | None = None
    generator: str | None = None  # how the synthetic corpus is made
    at_launch: DataFingerprint | None = None  # seen from the launcher
    job: DataFingerprint | None = None  # as the job read it

    def fingerprint(self) -> DataFingerprint | None:
        """The job's view when it has started, else the launcher's."""
        return self.job or self.at_launch


class GlobalIndices(_Part):
    """global_indices.npy's fingerprint and what it was made from (global_indices.json)."""

    name: str | None = None
    path: str | None = None
    size: int | None = None
    sha256: str | None = None
    method: str | None = None
    seed: int | None = None
    num_instances: int | None = None
    seq_len: int | None = None
    length: int | None = None


class FromRun(_Part):
    run: str
    overrides: list[str] = Field(default_factory=list)


class Record(_Part):
    format: int | None = None
    run: str
    created_at: float | None = None
    from_: FromRun | None = Field(default=None, alias="from")
    config: dict[str, Any]  # the RunSpec as JSON
    config_sha256: str | None = None
    overrides: list[str] = Field(default_factory=list)
    seed: int | None = None
    submissions: list[Submission] = Field(default_factory=list)
    attempts: list[AttemptRecord] = Field(default_factory=list)
    environment: StartEnv | None = None  # the newest job start's
    data: DataRecord = Field(default_factory=DataRecord)
    global_indices: GlobalIndices | None = None
    partial: str | None = None  # recorded after the fact: what is missing
    updated_at: float | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Record:
        return cls.model_validate(raw)

    def code(self) -> Code | None:
        """The code the job ran (its newest `started` event), else what the launcher had;
        with the launcher's saved diff file when the job ran the same local changes."""
        env_code = self.environment.code if self.environment else None
        if env_code is None:
            return self.submissions[-1].code if self.submissions else None
        git = env_code.git
        if git is None or not git.dirty:
            return env_code
        for sub in self.submissions:
            sgit = sub.code.git if sub.code else None
            if sgit and sgit.diff_sha256 == git.diff_sha256 and sgit.diff_file:
                env_code = env_code.model_copy(
                    update={"git": git.model_copy(update={"diff_file": sgit.diff_file})}
                )
        return env_code
