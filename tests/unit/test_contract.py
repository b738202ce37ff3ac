"""The job/launcher contract (olmoctl.schemas.contract, .events, .record): what the job's
writers leave in a run directory is what the launcher's readers understand."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from olmoctl.backends.files import LOCAL
from olmoctl.core.outputs.card import final_losses
from olmoctl.core.track import events as ev
from olmoctl.schemas import contract as rd
from olmoctl.schemas.events import (
    CheckpointSaved,
    Event,
    EventKind,
    Exiting,
    Heartbeat,
    SignalReceived,
    Started,
    Step,
    parse_event,
)
from olmoctl.schemas.record import Record
from olmoctl.train.observe.events import EventLog

DATA = Path(__file__).parent / "data"


def test_events_the_job_writes_are_what_the_launcher_reads(tmp_path: Path) -> None:
    log = EventLog(tmp_path, enabled=True)  # the job's writer (rank 0)
    log.emit(
        Started(
            job_id="41",
            attempt=0,
            nodes=["n1"],
            start_step=0,
            versions={"python": "3.11.7", "torch": "2.13.0", "rocm": None},
        )
    )
    log.emit(Step(step=1, loss=float("nan"), lr=1e-3, tokens_per_s=10.0))
    log.emit(Step(step=2, loss=2.5, lr=1e-3, tokens_per_s=12.0, mfu=None))
    log.emit(Heartbeat(step=2))
    log.emit(CheckpointSaved(step=2, path=str(tmp_path / "ckpt"), seconds=0.5, bytes=10))
    log.emit(SignalReceived(signal="SIGUSR2", step=2))
    log.emit(Exiting(reason="preempted", exit_status=3, step=2))
    log.close()

    events = ev.read_events(tmp_path)  # the launcher's reader
    kinds = [e.event for e in events]
    assert kinds == [
        EventKind.STARTED,
        EventKind.STEP,
        EventKind.STEP,
        EventKind.HEARTBEAT,
        EventKind.CHECKPOINT_SAVED,
        EventKind.SIGNAL_RECEIVED,
        EventKind.EXITING,
    ]
    types = [Started, Step, Step, Heartbeat, CheckpointSaved, SignalReceived, Exiting]
    assert [type(e) for e in events] == types
    assert all(isinstance(e.ts, float) for e in events)
    started = ev.started(events)[0]
    assert started.job_id == "41" and started.nodes == ["n1"] and started.versions
    assert events[1].loss is None  # NaN is not JSON: written as null
    s = ev.summarize(events)
    assert (s.step, s.loss, s.last_checkpoint, s.exit_reason) == (2, 2.5, 2, "preempted")
    assert final_losses(events) == [(2, 2.5)]
    # unset fields stay off the line (an old reader sees exactly what it saw before)
    lines = [json.loads(x) for x in (tmp_path / rd.EVENTS_FILE).read_text().splitlines()]
    assert list(lines[0])[:2] == ["ts", "event"] and "code" not in lines[0]
    assert "error" not in lines[-1] and lines[2]["mfu"] is None


def test_reading_events_is_tolerant() -> None:
    assert parse_event([1, 2]) is None
    newer = parse_event({"ts": 1.0, "event": "step", "step": 3, "new_field": {"a": 1}})
    assert isinstance(newer, Step) and newer.step == 3
    assert newer.model_extra == {"new_field": {"a": 1}}
    unknown = parse_event({"ts": 2.0, "event": "a_later_kind", "score": 0.5})
    assert type(unknown) is Event and unknown.event == "a_later_kind"
    bad = parse_event({"ts": 3.0, "event": "step", "step": "three"})
    assert type(bad) is Event and bad.event == "step"  # kept, but not taken as a step
    numeric_job = parse_event({"event": "started", "job_id": 41, "attempt": 1})
    assert isinstance(numeric_job, Started) and numeric_job.job_id == "41"


def test_checkpoint_dir_names_round_trip(tmp_path: Path) -> None:
    for step in (0, 7, 12345678, 123456789):
        assert rd.parse_step_dir(rd.step_dir_name(step)) == step
    for name in ("step_7", "step_0000000x", ".tmp-step_00000010", "latest"):
        assert rd.parse_step_dir(name) is None
    root = rd.checkpoints_root(tmp_path)
    for step, done in ((10, True), (20, False)):
        d = root / rd.step_dir_name(step)
        d.mkdir(parents=True)
        if done:
            (d / rd.COMPLETE_MARKER).write_text("{}")
    (root / f"{rd.CHECKPOINT_TMP_PREFIX}{rd.step_dir_name(30)}").mkdir()
    got = [(s, Path(p).name, c) for s, p, c in LOCAL.checkpoints(str(tmp_path))]
    assert got == [(10, "step_00000010", True), (20, "step_00000020", False)]


@pytest.mark.parametrize("job_id", ["1", "41", "19999", "20000", "123456"])
def test_master_port_is_one_formula_for_the_script_and_the_job(job_id: str) -> None:
    expr = rd.master_port_shell("SLURM_JOB_ID")
    out = subprocess.run(
        ["bash", "-c", f'SLURM_JOB_ID={job_id}; echo "{expr}"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert int(out) == rd.master_port_for(job_id)


def test_a_record_of_the_current_format_reads_typed() -> None:
    raw = json.loads((DATA / "record_format1.json").read_text())
    rec = Record.of(raw)
    assert rec.run == "r1" and rec.seed == 6198 and rec.from_ is None
    assert rec.submissions[0].script_file == rd.script_file(1)
    a = rec.attempts[0]
    assert a.attempt_no == 1 and a.job_id == "101" and a.env[0].versions.torch == "2.13.0+cu126"
    assert rec.environment.devices.count == 1
    fp = rec.data.fingerprint()
    assert rec.data.synthetic and fp is rec.data.job and fp.files[0].name == "synthetic.npy"
    assert rec.global_indices.num_instances == 200 and rec.global_indices.seq_len == 64
    code = rec.code()  # the job's code, with the launcher's diff file for the same changes
    assert code.git.dirty and code.git.diff_file == "code/bf8db2b27a0a4295.diff"
    # nothing is lost: the model dumps back to the JSON it read
    assert rec.model_dump(mode="json", by_alias=True, exclude_unset=True) == raw


def test_a_record_with_unknown_and_missing_fields_reads() -> None:
    rec = Record.of(
        {"run": "old", "config": {}, "from": {"run": "src"}, "future": 1, "environment": {}}
    )
    assert rec.from_.run == "src" and rec.from_.overrides == [] and rec.model_extra == {"future": 1}
    assert rec.attempts == [] and rec.data.fingerprint() is None and rec.code() is None
