"""Nothing the user asked for is silently dropped (issue 26 item 11): a sweep larger than one
job array can be dry-run; `sweep --name ""` / `--time ""` are refused, not ignored; every
option that `render --diff RUN`, `--diff-cluster A B` or `--from-spec` would ignore is
refused in one line naming it (an explicit default like `--nodes 1` included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from olmoctl.store import Store


def _sweep(tmp_path: Path, *more: str) -> list[str]:
    root = f"cluster.runs_root={tmp_path / 'runs'}"
    return ["sweep", "tiny", "-c", "dev", "-o", root, *more]


def test_a_sweep_of_several_arrays_can_be_dry_run(cli, tmp_path: Path) -> None:
    """5 points, MaxArraySize 2: three arrays, each after the one before. The dry run once
    exited 1 on the second (its stand-in for the previous array's id was not one word)."""
    args = _sweep(tmp_path, "--grid", "optim.lr=1e-3,2e-3,3e-3,4e-3,5e-3",
                  "-o", "cluster.max_array_size=2", "--dry-run")  # fmt: skip
    res = cli(*args, "--json")
    assert res.code == 0, res.err
    arrays = [s for s in json.loads(res.out)["scripts"] if "array" in s]
    assert [a["points"] for a in arrays] == [[0, 1], [2, 3], [4]]
    assert "--dependency" not in arrays[0]["script"]
    assert "#SBATCH --dependency=afterany:JOBID_OF_ARRAY_0\n" in arrays[1]["script"]
    assert "#SBATCH --dependency=afterany:JOBID_OF_ARRAY_1\n" in arrays[2]["script"]
    res = cli(*args)
    assert res.code == 0 and res.out.count("# ---- array") == 3, res.err
    assert Store().run_names() == []  # a dry run


@pytest.mark.parametrize(("flag", "what"), [("--name", "sweep --name: "), ("--time", "--time ")])
def test_an_empty_sweep_value_is_refused_not_dropped(
    cli, tmp_path: Path, flag: str, what: str
) -> None:
    res = cli(*_sweep(tmp_path, "--grid", "optim.lr=1e-3", flag, "", "--dry-run"))
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    assert res.err.startswith(f"olmoctl: error: {what}''"), res.err


def test_an_empty_name_does_not_fall_back_to_the_files(cli, tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("recipe: tiny\ncluster: dev\nname: fromfile\ngrid:\n  optim.lr: [1e-3]\n")
    res = cli("sweep", "--file", str(f), "--name", "", "--dry-run")
    assert res.code == 2 and "sweep --name: ''" in res.err and "fromfile" not in res.out


# (command line after `render`, the options the one line must name)
DIFF_RUN = ["--diff", "r"]
DIFF_CLUSTERS = ["tiny", "--diff-cluster", "dev", "a100"]
SPEC = ["--from-spec", "spec.json"]
REFUSED = [
    ([*DIFF_RUN, "--nodes", "5"], ["--nodes"]),
    ([*DIFF_RUN, "--nodes", "1"], ["--nodes"]),  # the default, but asked for
    ([*DIFF_RUN, "-c", "dev"], ["--cluster"]),
    ([*DIFF_RUN, "--spare-nodes", "1"], ["--spare-nodes"]),
    ([*DIFF_RUN, "--name", "x"], ["--name"]),
    ([*DIFF_RUN, "--out", "f.sh", "--plain"], ["--out", "--plain"]),
    ([*DIFF_RUN, "--force"], ["--force"]),
    (["tiny", *DIFF_RUN], ["a recipe"]),
    ([*DIFF_RUN, "--diff-cluster", "dev", "a100"], ["--diff-cluster"]),
    ([*DIFF_CLUSTERS, "-c", "dev"], ["--cluster"]),
    ([*DIFF_CLUSTERS, "--spare-nodes", "2"], ["--spare-nodes"]),
    ([*DIFF_CLUSTERS, "--out", "f.sh"], ["--out"]),
    ([*DIFF_CLUSTERS, "--plain"], ["--plain"]),
    ([*DIFF_CLUSTERS, "--force"], ["--force"]),
    ([*DIFF_CLUSTERS, "--attempt", "1"], ["--attempt"]),
    ([*SPEC, "--nodes", "1"], ["--nodes"]),
    ([*SPEC, "tiny", "-c", "dev"], ["a recipe", "--cluster"]),
    ([*SPEC, "--attempt", "2", "-o", "a=b"], ["-o", "--attempt"]),
    ([*SPEC, "--diff", "r", "--time", "01:00:00"], ["--time", "--diff"]),
]


@pytest.mark.parametrize(("args", "named"), REFUSED)
def test_render_refuses_what_a_mode_ignores(cli, args: list[str], named: list[str]) -> None:
    res = cli("render", *args)
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    ignored = res.err.split("goes without ", 1)[1].split(" (", 1)[0]
    assert sorted(ignored.split(", ")) == sorted(named), res.err


def test_render_diff_keeps_what_it_uses(cli, tmp_path: Path) -> None:
    """What each mode reads is still taken: no refusal past the option checks."""
    res = cli("render", "--diff", "nope", "--attempt", "1", "-t", "01:00:00", "-o", "a.b=1")
    assert res.code == 2 and "goes without" not in res.err and "nope" in res.err
    res = cli("render", "tiny", "--diff-cluster", "dev", "dev", "-N", "1", "--name", "x",
              "-t", "01:00:00", "-o", f"cluster.runs_root={tmp_path}")  # fmt: skip
    assert res.code == 0 and "goes without" not in res.err, res.err
