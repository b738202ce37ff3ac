"""Where a job's files are and what each rank runs: the command in the batch script's slot,
submitit's folder in the run directory (its pickle and log names come from submitit's own
JobPaths), and Slurm's log files. Paths are computed here; reading them is `files`' job
(this machine or a remote login node)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from olmoctl.backends.files import RunFiles
from olmoctl.schemas import RunSpec
from olmoctl.schemas import contract as rd
from olmoctl.shellquote import quote

SUBMITIT_DIR = "submitit"  # RUN_DIR/submitit: submitit's pickles and (local) logs
_RANK = re.compile(r"-rank([0-9]{1,9})\.out$")  # ASCII digits (\d takes any script's)


def spec_path(spec: RunSpec) -> str:
    return f"{spec.run_dir}/{rd.SPEC_FILE}"


def log_dir(run_dir: str) -> str:
    return f"{run_dir}/{rd.LOGS_DIR}"


def submitit_folder(run_dir: str) -> str:
    return f"{run_dir}/{SUBMITIT_DIR}"


def python_command(spec: RunSpec) -> str:
    """The cluster's python as shell text (one quoted word), the same in every command;
    submitit is given this as its `python`, which it pastes into its command as is."""
    return quote(spec.cluster.python)


def train_command(spec: RunSpec) -> str:
    """The plain job command: every rank runs the trainer on the run's spec."""
    args = ["-u", "-m", "olmoctl.train", spec_path(spec)]
    return " ".join([python_command(spec), *map(quote, args)])


def burnin_command(spec: RunSpec) -> str:
    """The burn-in step's command (olmoctl.train.burnin), run on every node before training."""
    return " ".join([python_command(spec), "-u -m olmoctl.train.burnin", quote(spec_path(spec))])


def preflight_command(spec: RunSpec) -> str:
    """`olmoctl doctor`'s job command: every rank runs the preflight checks on the spec."""
    args = ["-u", "-m", "olmoctl.train.burnin.preflight", spec_path(spec)]
    return " ".join([python_command(spec), *map(quote, args)])


def submitit_command(spec: RunSpec) -> str:
    """What submitit runs on every rank: it unpickles olmoctl.train's entry and calls it."""
    folder = quote(submitit_folder(spec.run_dir))
    return " ".join([python_command(spec), "-u -m submitit.core._submit", folder])


def _submitit_name(attr: str, job_id: str, task: str = "0") -> str:
    """One of submitit's file names (JobPaths' templates, %j job id, %t task) for `job_id`;
    `task` may be a glob."""
    from submitit.core.utils import JobPaths

    template: Path = getattr(JobPaths("."), attr)  # no job id: the template itself
    return template.name.replace("%j", job_id).replace("%t", task)


def submitted_job_ids(fs: RunFiles, run_dir: str) -> list[str]:
    """Job ids that submitit pickled a submission for in this run's folder, sorted (the
    newest last): what a launch that crashed before recording its job id left behind."""
    pattern = _submitit_name("submitted_pickle", "*")
    found = fs.glob(submitit_folder(run_dir), pattern)
    return sorted(Path(p).name.split("_")[0] for p in found)


def write_submitted_pickle(spec: RunSpec, job_id: str) -> None:
    """The pickle submitit's job side (`python -m submitit.core._submit FOLDER`) loads for
    `job_id` (an array task's is ARRAY_TASK), written atomically: olmoctl.train's entry."""
    from submitit.core.utils import JobPaths
    from submitit.helpers import DelayedSubmission

    from olmoctl.train.submit_entry import TrainJob

    path = JobPaths(submitit_folder(spec.run_dir), job_id=job_id).submitted_pickle
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    DelayedSubmission(TrainJob(), spec_path(spec)).dump(tmp)
    os.replace(tmp, path)


def submitit_rank_logs(fs: RunFiles, run_dir: str, job_id: str) -> dict[int, Path]:
    """rank -> submitit's stdout file of each task (the local backend's per-rank logs)."""
    found = map(Path, fs.glob(submitit_folder(run_dir), _submitit_name("stdout", job_id, "*")))
    head, tail = _submitit_name("stdout", job_id, "\0").split("\0")  # JOB_, _log.out
    ranks = ((p.name.removeprefix(head).removesuffix(tail), p) for p in found)
    # ASCII digits only: a file in the run directory is anyone's; int() takes any script's digits.
    return {int(r): p for r, p in ranks if re.fullmatch(r"[0-9]{1,9}", r)}


# -- Slurm's own files (the batch script's --output and srun's per-rank --output) ------------
def rank_log_glob(run_dir: str, job_id: str) -> tuple[str, str]:
    """(folder, glob pattern) of a Slurm job's per-rank output files."""
    return log_dir(run_dir), rd.rank_log_name(job_id, "*")


def batch_path(run_dir: str, job_id: str) -> str:
    return f"{log_dir(run_dir)}/{rd.batch_log_name(job_id)}"


def slurm_rank_logs(fs: RunFiles, run_dir: str, job_id: str) -> dict[int, Path]:
    """rank -> logs/JOB-rankR.out of a Slurm job."""
    out = {}
    for p in map(Path, fs.glob(*rank_log_glob(run_dir, job_id))):
        m = _RANK.search(p.name)
        if m:
            out[int(m.group(1))] = p
    return out


class SlurmJobLogs:
    """Where a Slurm job's logs and submitit's ids are, for every backend whose jobs Slurm
    runs (here or behind ssh): `self.files` reads the run directory wherever it is."""

    files: RunFiles

    def rank_logs(self, run_dir: str, job_id: str) -> dict[int, Path]:
        return slurm_rank_logs(self.files, run_dir, job_id)

    def batch_log(self, run_dir: str, job_id: str) -> Path | None:
        return Path(batch_path(run_dir, job_id))

    def recover_job_id(self, run_dir: str) -> str | None:
        ids = submitted_job_ids(self.files, run_dir)
        return ids[-1] if ids else None
