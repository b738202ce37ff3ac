"""Hostile files and values: size, encoding, nesting and alias bombs are refused in one line
before the work they would cause; messages quote at most ~100 characters of a value.
(tests/conftest.py checks every UsageError made here is one bounded line.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from olmoctl.errors import UsageError, flat, shown
from olmoctl.schemas.bounded import FILE, expanded_size, load_json, load_yaml, read_text
from tests.conftest import REPO

DEV = (REPO / "clusters" / "dev.yaml").read_text()
# Nine anchors, each a list of nine aliases of the one before: 9**9 (about 3.9e8) values
# once expanded, in a few hundred bytes.
BOMB_YAML = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)
BOMB_FLOW = "[&a [1,1,1,1,1,1,1,1,1]," + ",".join(
    f"&{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _one_line(res) -> str:
    assert res.code == 2, (res.code, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err[:2000]
    assert "Traceback" not in res.err
    assert lines[0].startswith("olmoctl: error: ")
    return lines[0]


# ------------------------------------------------------------------ shown(): quoting a value
def test_shown_escapes_and_truncates() -> None:
    assert shown("plain") == "'plain'"
    assert shown("x\ny") == "'x\\ny'"
    assert shown("\x1b[31mred") == "'\\x1b[31mred'"
    long = shown("a" * 100_000)
    assert len(long) < 140 and long.endswith("…' (100000 characters)")
    assert "\n" not in shown("\n" * 500) and len(shown("\n" * 500)) < 140
    assert shown(10**5000) == "an integer of about 5001 digits"
    nested = shown([["x\n" * 50] * 50] * 50)
    assert len(nested) <= 100 and nested.isprintable()
    assert flat("a\nb") == "a\\nb"


# ------------------------------------------------------------------ size and encoding
def test_two_megabyte_profile_is_refused(cli, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(DEV + "# " + "x" * (2 * 1024 * 1024) + "\n")
    line = _one_line(cli("render", "tiny", "-c", str(big)))
    assert f"cluster file {big} is larger than 1 MiB" in line


def test_huge_file_is_not_read_whole(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:  # sparse: 150 MB that reading whole would cost
        f.truncate(150 * 1024 * 1024)
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        read_text(huge, "recipe file", FILE)


def test_non_utf8_profile(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"name: x\n\xff\xfe\x00binary")
    line = _one_line(cli("render", "tiny", "-c", str(bad)))
    assert "is not UTF-8 text (byte 0xff at offset 8)" in line


@pytest.mark.parametrize("flag", ["-c", "recipe"])
def test_directory_given_as_a_file(cli, tmp_path: Path, flag: str) -> None:
    d = tmp_path / "adir.yaml"
    d.mkdir()
    args = ["tiny", "-c", str(d)] if flag == "-c" else [str(d), "-c", "dev"]
    line = _one_line(cli("render", *args))
    assert "is a directory" in line and "does not exist" not in line


def test_sweep_file_that_is_a_directory(cli, tmp_path: Path) -> None:
    line = _one_line(cli("sweep", "--file", str(tmp_path), "--dry-run"))
    assert f"sweep file {tmp_path} is a directory" in line


# ------------------------------------------------------------------ listing with a bad file
def test_one_bad_user_file_is_one_bad_entry(cli, user_env: Path) -> None:
    clusters = user_env / "clusters"
    recipes = user_env / "recipes"
    clusters.mkdir(parents=True)
    recipes.mkdir(parents=True)
    (clusters / "broken.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (clusters / "mine.yaml").write_text(DEV.replace("name: dev", "name: mine"))
    (recipes / "bomb.yaml").write_text(BOMB_YAML)
    (recipes / "deep.yaml").write_text("x: " + "[" * 1000 + "]" * 1000 + "\n")

    res = cli("clusters", "--json")
    assert res.code == 0, res.err
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert {"dev", "lumi", "mine"} <= set(rows)
    assert "not UTF-8" in rows["broken"]["error"]
    res = cli("clusters")
    assert res.code == 0 and "mine" in res.out
    assert [ln for ln in res.err.splitlines() if "broken" in ln] == [
        ln for ln in res.err.splitlines() if ln.startswith("olmoctl: skipped broken: ")
    ]

    res = cli("recipes")
    assert res.code == 0 and "tiny" in res.out and "7b" in res.out
    skipped = [ln for ln in res.err.splitlines() if ln.startswith("olmoctl: skipped")]
    assert len(skipped) == 2 and all(len(ln) < 400 for ln in skipped)
    assert any("aliases expand to more than" in ln for ln in skipped)
    assert any("nested more than 64 levels deep" in ln for ln in skipped)


# ------------------------------------------------------------------ depth and alias bombs
def test_alias_bomb_file_is_refused_before_expansion(tmp_path: Path) -> None:
    # Would be ~3.9e8 values; must finish at once (a regression would run for minutes and
    # end in MemoryError, so finishing at all is the check).
    with pytest.raises(UsageError, match="aliases expand to more than 1,000,000 values"):
        load_yaml(BOMB_YAML, "bomb.yaml")


def test_expanded_size_counts_without_expanding() -> None:
    import yaml

    node = yaml.compose(BOMB_YAML, Loader=yaml.SafeLoader)
    assert expanded_size(node, 10**12) > 10**8


def test_alias_bomb_profile(cli, tmp_path: Path) -> None:
    p = tmp_path / "bomb.yaml"
    p.write_text(DEV + "bomb: " + BOMB_FLOW + "]\n")
    line = _one_line(cli("render", "tiny", "-c", str(p)))
    assert "aliases expand to more than" in line


def test_alias_bomb_in_an_override_is_one_short_line(cli) -> None:
    line = _one_line(cli("render", "tiny", "-c", "dev", "-o", f"data.paths=[{BOMB_FLOW}]]"))
    assert "-o data.paths: YAML anchors and aliases expand to more than 100,000" in line
    assert len(line) < 300


def test_control_character_in_yaml_is_one_line(cli) -> None:
    line = _one_line(cli("render", "tiny", "-c", "dev", "-o", "data.paths=\x1b"))
    assert "data.paths" in line


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(UsageError, match="refers to the collection it is in"):
        load_yaml("a: &a [*a]\n", "loop.yaml")


def test_deeply_nested_file_and_value(cli, tmp_path: Path) -> None:
    deep = "[" * 1000 + "]" * 1000
    p = tmp_path / "deep.yaml"
    p.write_text(DEV + f"extra: {deep}\n")
    line = _one_line(cli("render", "tiny", "-c", str(p)))
    assert f"{p}:{len(DEV.splitlines()) + 1}: nested more than 64 levels deep" in line
    line = _one_line(cli("render", "tiny", "-c", "dev", "-o", f"data.paths={deep}"))
    assert "-o data.paths:1: nested more than 64 levels deep" in line


def test_deep_json_is_refused() -> None:
    for n in (100, 100_000):
        with pytest.raises(UsageError, match="nested more than 64 levels deep"):
            load_json("[" * n + "]" * n, "spec.json")


def test_oversized_override_value(cli) -> None:
    line = _one_line(cli("render", "tiny", "-c", "dev", "-o", "name=" + "x" * 70_000))
    assert "-o 'name': the value is 70,005 characters; the limit is 65,536" in line


def test_huge_integer_in_yaml(cli, tmp_path: Path) -> None:
    p = tmp_path / "int.yaml"
    p.write_text(DEV + "max_nodes: " + "9" * 5000 + "\n")
    line = _one_line(cli("render", "tiny", "-c", str(p)))
    assert len(line) < 400


# ------------------------------------------------------------------ run-directory files
def test_job_config_bounds(tmp_path: Path) -> None:
    from olmoctl.train.runtime.config import load_job_config

    deep = tmp_path / "spec.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(UsageError, match="nested more than 64 levels deep"):
        load_job_config(deep)
    binary = tmp_path / "recipe.yaml"
    binary.write_bytes(b"\xff" * 10)
    with pytest.raises(UsageError, match="not UTF-8"):
        load_job_config(binary, run_dir=str(tmp_path))


def test_record_file_bounds(tmp_path: Path) -> None:
    from olmoctl.core.records.record import read_file

    (tmp_path / "record.json").write_text("[" * 5000 + "]" * 5000)
    assert read_file(tmp_path) is None
    with open(tmp_path / "record.json", "wb") as f:
        f.truncate(100 * 1024 * 1024)
    assert read_file(tmp_path) is None


# ------------------------------------------------------------------ sweeps count first
def test_sweep_counts_points_before_building_them(cli) -> None:
    values = ",".join(str(i) for i in range(1000))
    res = cli(
        "sweep",
        "tiny",
        "-c",
        "dev",
        "--dry-run",
        "--grid",
        f"optim.lr={values}",
        "--grid",
        f"train.seed={values}",
        "--grid",
        f"optim.weight_decay={values}",
    )
    line = _one_line(res)
    assert "the sweep has 1,000,000,000 points (1000 x 1000 x 1000); the limit is 10,000" in line


def test_sweep_random_counts_too(cli) -> None:
    res = cli(
        "sweep",
        "tiny",
        "-c",
        "dev",
        "--dry-run",
        "--grid",
        "optim.lr=1,2,3",
        "--random",
        "5000",
        "--sample",
        "train.seed=int:0:100",
    )
    assert "has 15,000 points (3 x 5000 random draws); the limit is 10,000" in _one_line(res)


# ------------------------------------------------------------------ messages
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("cluster.mem=12X", "cluster.mem: '12X' is not allowed here: use a whole number"),
        ("cluster.max_time=soon", "cluster.max_time: 'soon' is not allowed here: use a Slurm time"),
        ("cluster.ssh.host=a b", "cluster.ssh.host: 'a b' is not allowed here: use a host name"),
        ("cluster.partition=x\ny", "cluster.partition: 'x\\ny' is not allowed here: a name is"),
        ("cluster.env.A\nB=1", "variable name 'A\\nB' is not a valid environment variable name"),
        ("cluster.acount\nx=1", "unknown key 'cluster.acount\\nx'"),
        ("optim.lr=" + "9\n" * 5000, "optim.lr: Input should be a valid number"),
    ],
)
def test_messages_name_the_key_and_quote_briefly(cli, override: str, expected: str) -> None:
    line = _one_line(cli("render", "tiny", "-c", "dev", "-o", override))
    assert expected in line
    assert "[KMGT]" not in line and "\\d" not in line  # words, not a regex
    assert len(line) < 600


def test_run_name_with_a_newline(cli) -> None:
    line = _one_line(cli("render", "tiny", "-c", "dev", "--name", "x\ntouch ./pwned"))
    assert "run name 'x\\ntouch ./pwned' is not valid" in line


def test_relative_runs_root_names_key_and_file(cli, tmp_path: Path) -> None:
    p = tmp_path / "rel.yaml"
    p.write_text(DEV.replace("runs_root: ~/olmoctl-runs/dev", "runs_root: runs/dev"))
    line = _one_line(cli("render", "tiny", "-c", str(p)))
    assert f"{p}: runs_root: 'runs/dev' is not an absolute path" in line
    line = _one_line(cli("render", "tiny", "-c", "dev", "-o", "cluster.runs_root=rel"))
    assert "-o cluster.runs_root=rel: cluster.runs_root: 'rel' is not an absolute path" in line


@pytest.mark.parametrize("var", ["OLMOCTL_ACCOUNT", "SBATCH_ACCOUNT"])
def test_bad_account_variable_is_blamed(cli, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "proj;reboot\nx")
    line = _one_line(cli("render", "7b", "-c", "lumi", "-N", "2"))
    expected = f"olmoctl: error: Slurm account from {var} 'proj;reboot\\nx' is not allowed here"
    assert line.startswith(expected)
    assert "lumi.yaml" not in line


def test_status_filter_that_matches_nothing(cli, tmp_path: Path) -> None:
    from olmoctl.core.launch import specs
    from olmoctl.store import Store

    spec = specs.resolve("tiny", "dev", name="r", overrides=[f"cluster.runs_root={tmp_path}"])
    with Store().tx() as tx:
        tx.create_run(spec, state="COMPLETED")  # nothing live: status queries no scheduler
    res = cli("status", "--cluster", "nowhere")
    assert res.code == 0 and res.out.strip() == "no runs match --cluster nowhere (1 run in all)"
    line = _one_line(cli("status", "--since", "soon\n"))
    assert "--since 'soon\\n': use a number and a unit" in line


def test_watch_validates_before_its_banner(cli) -> None:
    res = cli("watch", "no-such-run", "--once")
    assert res.code == 2 and "watch:" not in res.err
    assert _one_line(res).endswith("no run named 'no-such-run'; no runs recorded yet")


def test_unknown_recipe_name_with_a_newline(cli) -> None:
    line = _one_line(cli("render", "x\n" * 200, "-c", "dev"))
    assert "unknown recipe 'x\\nx\\n" in line and len(line) < 400
