"""The Slurm parsers against real output of several Slurm versions (fixtures/slurm/README.md):
states with a suffix (`CANCELLED by 0`), requeued duplicates, job steps, array tasks and
pending ranges, empty and `Unknown`/`None` fields."""

from __future__ import annotations

from pathlib import Path

from olmoctl.backends.slurm_cli import (
    SACCT_FIELDS,
    parse_node_states,
    parse_sacct,
    parse_squeue,
)

FIXTURES = Path(__file__).parent / "fixtures" / "slurm"


def fixture(version: str, name: str) -> str:
    return (FIXTURES / version / name).read_text()


def as_olmoctl_format(text: str) -> str:
    """A capture made with other --format columns (its first line is the header), put in
    olmoctl's column order; the columns it lacks are empty."""
    header, *rows = text.splitlines()
    names = header.split("|")
    out = []
    for row in rows:
        values = dict(zip(names, row.split("|"), strict=True))
        out.append("|".join(values.get(f, "") for f in SACCT_FIELDS.split(",")))
    return "\n".join(out)


def test_22_05_sacct_allocations_with_duplicates() -> None:
    jobs = parse_sacct(fixture("22.05", "sacct-allocations-ended.txt"))
    assert [i.state for i in jobs["1"]] == ["COMPLETED"]
    failed = jobs["2"][0]
    assert (failed.state, failed.exit_code, failed.node_list) == ("FAILED", "3:0", "node1")
    assert jobs["3"][0].state == "CANCELLED"  # "CANCELLED by 0"
    # Cancelled while pending: no node, Start "None", the pending reason kept.
    pending = jobs["4"][0]
    assert (pending.state, pending.node_list, pending.start) == ("CANCELLED", None, None)
    assert pending.end is not None and pending.reason == "BeginTime"
    # scontrol requeue: one record per incarnation, oldest first.
    assert [i.state for i in jobs["6"]] == ["REQUEUED", "CANCELLED"]
    assert jobs["6"][0].end is not None and jobs["6"][1].start > jobs["6"][0].start
    assert jobs["7"][0].state == "RUNNING" and jobs["7"][0].end is None  # End "Unknown"
    assert jobs["1"][0].reason is None  # "None"
    # Array tasks are keyed by their own ids, one record each.
    assert {k: [i.state for i in v] for k, v in jobs.items() if k.startswith("5_")} == {
        "5_1": ["COMPLETED"],
        "5_2": ["COMPLETED"],
        "5_3": ["COMPLETED"],
    }


def test_22_05_sacct_live_pending_range_is_not_a_task_record() -> None:
    jobs = parse_sacct(fixture("22.05", "sacct-allocations-live.txt"))
    # 5_2 runs while the range row still says [2-3]: the range must not become a second
    # record (an extra incarnation) of 5_2 or a record of 5_3.
    assert [i.state for i in jobs["5_2"]] == ["RUNNING"]
    assert "5_3" not in jobs
    assert [i.state for i in jobs["6"]] == ["REQUEUED", "PENDING"]
    requeued = jobs["6"][1]
    assert (requeued.node_list, requeued.start, requeued.reason) == (None, None, "BeginTime")


def test_22_05_sacct_steps_are_skipped() -> None:
    text = fixture("22.05", "sacct-steps.txt")
    assert ".batch|" in text and "8.1|FAILED" in text
    jobs = parse_sacct(text)
    assert sorted(jobs) == ["1", "2", "3", "8"]
    # Job 8's step .1 failed but the job (its allocation row) completed.
    assert [i.state for i in jobs["8"]] == ["COMPLETED"]
    assert jobs["3"][0].state == "CANCELLED" and jobs["3"][0].exit_code == "0:0"


def test_22_05_squeue() -> None:
    jobs = parse_squeue(fixture("22.05", "squeue-all.txt"))
    assert jobs["4"].state == "PENDING" and jobs["4"].node_list is None
    assert jobs["4"].reason == "BeginTime"
    assert jobs["3"].state == "RUNNING" and jobs["3"].node_list == "node1"
    assert jobs["2"].state == "FAILED" and jobs["2"].reason == "NonZeroExitCode"
    assert "5_[2-3%1]" in jobs and "5_3" not in jobs  # the range, as printed
    # Asked by task id, squeue names the pending task itself.
    task = parse_squeue(fixture("22.05", "squeue-array-task.txt"))
    assert list(task) == ["5_3"] and task["5_3"].reason == "JobArrayTaskLimit"


def test_22_05_scontrol_node() -> None:
    assert parse_node_states(fixture("22.05", "scontrol-node.txt")) == {"node1": ("MIXED", "")}


def test_23_11_cancelled_by_uid_and_steps() -> None:
    jobs = parse_sacct(as_olmoctl_format(fixture("23.11", "sacct-cancelled-by-user.txt")))
    assert list(jobs) == ["2699001"]
    info = jobs["2699001"][0]
    assert info.state == "CANCELLED"  # "CANCELLED by 54321"
    # The columns this capture lacks are empty: no nodes, times, exit code or reason.
    assert (info.node_list, info.start, info.end, info.exit_code, info.reason) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_23_11_terminal_states() -> None:
    jobs = parse_sacct(as_olmoctl_format(fixture("23.11", "sacct-terminal-states.txt")))
    assert {k: v[0].state for k, v in jobs.items()} == {
        "2699101": "TIMEOUT",
        "2699102": "OUT_OF_MEMORY",
        "2699103": "NODE_FAIL",
        "2699104": "FAILED",
    }


def test_23_11_many_steps_one_record() -> None:
    jobs = parse_sacct(as_olmoctl_format(fixture("23.11", "sacct-multistep-running.txt")))
    assert {k: [i.state for i in v] for k, v in jobs.items()} == {"2710593": ["RUNNING"]}


def test_junk_and_blank_lines_are_ignored() -> None:
    assert parse_sacct("\n\nsacct: error: something\n") == {}
    assert parse_squeue("\nslurm_load_jobs error: Invalid job id specified\n") == {}
