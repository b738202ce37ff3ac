"""Every kind of bad input: one line on stderr naming the file/key, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest


def _one_line_error(res) -> str:
    assert res.code == 2, (res.code, res.err)
    assert res.out == ""
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert "Traceback" not in res.err
    assert lines[0].startswith("olmoctl: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["tiniy", "-c", "dev"], "unknown recipe 'tiniy'; did you mean 'tiny'?"),
        (["tiny", "-c", "lumii"], "unknown cluster 'lumii'; did you mean 'lumi'?"),
        (
            ["tiny", "-c", "dev", "-o", "optim.lrr=1e-3"],
            "unknown key 'optim.lrr'; did you mean 'optim.lr'",
        ),
        (["tiny", "-c", "dev", "-o", "modle.n_layers=4"], "did you mean 'model.n_layers'"),
        (["tiny", "-c", "dev", "-o", "cluster.acount=x"], "did you mean 'cluster.account'"),
        (["tiny", "-c", "dev", "-o", "optim.lr=fast"], "optim.lr: Input should be a valid number"),
        (["tiny", "-c", "dev", "-o", "model.n_layers=2.5"], "model.n_layers"),
        (["tiny", "-c", "dev", "-o", "optim.lr"], "expected key.path=value"),
        (["tiny", "-c", "dev", "-N", "0"], "--nodes must be at least 1, got 0"),
        (["tiny", "-c", "dev", "-N", "9"], "nodes=9 is above cluster 'dev''s limit of 8"),
        (
            ["tiny", "-c", "dev", "-t", "03:00:00"],
            "time 03:00:00 is above cluster 'dev''s max time 02:00:00",
        ),
        (["tiny", "-c", "dev", "-t", "soon"], "--time 'soon' is not a Slurm time"),
        (
            ["tiny", "-c", "dev", "-N", "5"],
            "train.global_batch_size (48 sequences) is not divisible by 5 GPUs x "
            "train.micro_batch_size 2 = 10",
        ),
        (
            ["7b", "-c", "lumi", "-N", "2"],
            "cluster 'lumi' needs a Slurm account: pass -o cluster.account=",
        ),
        (["tiny", "-c", "dev", "--name", "x;rm -rf ~"], "run name 'x;rm -rf ~' is not valid"),
        (["tiny", "-c", "dev", "--name", "$(id)"], "run name '$(id)' is not valid"),
        (
            ["7b", "-c", "lumi", "-o", "cluster.account=proj;reboot"],
            "cluster.account: 'proj;reboot' is not allowed here",
        ),
        (
            ["tiny", "-c", "dev", "-o", "cluster.partition=dev`id`"],
            "cluster.partition: 'dev`id`' is not allowed",
        ),
        (["tiny", "-c", "dev", "-o", 'cluster.env.FOO=a"b'], "env.FOO"),
        (
            ["tiny", "-c", "dev", "-o", "cluster.env.FOO=$(reboot)"],
            "cluster.env.FOO: '$(reboot)' is not allowed here: '$' outside a $NAME or ${NAME}",
        ),
        (
            ["tiny", "-c", "dev", "-o", "model.n_heads=3"],
            "model.d_model (64) must be divisible by model.n_heads (3)",
        ),
        (["tiny", "-c", "dev", "-o", "train.seq_len=4096"], "exceeds model.max_seq_len"),
    ],
)
def test_bad_input(cli, args: list[str], expected: str) -> None:
    line = _one_line_error(cli("render", *args))
    assert expected in line


def test_malformed_yaml_profile_names_the_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\nvendor: cpu\nenv:\n  A: 1\n B: 2\n")
    line = _one_line_error(cli("render", "tiny", "--cluster", str(bad)))
    assert f"{bad}:5: malformed YAML" in line


def test_profile_with_unknown_key_names_file_and_key(cli, tmp_path: Path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\nvendor: cpu\nruns_root: /tmp/r\ngpus_per_nod: 8\n")
    line = _one_line_error(cli("render", "tiny", "--cluster", str(bad)))
    assert f"{bad}: unknown key 'gpus_per_nod'; did you mean 'gpus_per_node'" in line


def test_missing_profile_file(cli, tmp_path: Path) -> None:
    line = _one_line_error(cli("render", "tiny", "--cluster", str(tmp_path / "none.yaml")))
    assert "does not exist" in line


def test_unwritable_out(cli, tmp_path: Path) -> None:
    line = _one_line_error(
        cli("render", "tiny", "-c", "dev", "--out", str(tmp_path / "no" / "x.sh"))
    )
    assert "cannot write" in line


def test_cli_usage_error_exits_2(cli) -> None:
    res = cli("render", "tiny")
    assert res.code == 2
    assert "--cluster" in res.err
