"""YAML merge keys (`<<: *base`), common in site profiles, are accepted by every YAML reader
(profiles, recipes, sweep files, -o values, the job's recipe loader) while the bounds stay:
a key the mapping itself gives twice is refused (file:line), a key given after a merge
overrides the merged one (YAML's merge semantics), merged data counts towards the alias
expansion limit (issue 26 item 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from olmoctl.errors import UsageError
from olmoctl.schemas.bounded import UniqueKeyLoader, load_yaml
from olmoctl.train.runtime.config import read_mapping
from tests.conftest import REPO

DEV = (REPO / "clusters" / "dev.yaml").read_text()


def _load(text: str, limits=None):
    if limits is None:
        return load_yaml(text, "f.yaml", loader=UniqueKeyLoader)
    return load_yaml(text, "f.yaml", limits, loader=UniqueKeyLoader)


def _one_line(res) -> str:
    assert res.code == 2, (res.code, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.err, res.err[:2000]
    return lines[0]


# ------------------------------------------------------------------ semantics
def test_own_key_overrides_merged_one() -> None:
    data = _load("base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\n")
    assert data["x"] == {"a": 1, "b": 3}
    assert data["base"] == {"a": 1, "b": 2}  # the source is untouched


def test_own_key_before_the_merge_still_wins() -> None:
    assert _load("base: &b {a: 1, b: 2}\nx:\n  b: 3\n  <<: *b\n")["x"] == {"b": 3, "a": 1}


def test_merge_list_earlier_source_wins() -> None:
    data = _load("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n")
    assert data["c"] == {"x": 1, "y": 1, "z": 3}


@pytest.mark.parametrize("key", ["y", "a_key_long_enough_not_to_be_interned_by_python"])
def test_a_merged_mapping_that_overrides_its_own_merge(key: str) -> None:
    # b merges a and overrides `key`; c merges b: c sees b's value, whatever the key's
    # text (PyYAML's flatten keeps the first pair by id() of the key text: interned short
    # keys came out as a's value).
    text = f"a: &a {{x: 1, {key}: 1}}\nb: &b {{<<: *a, {key}: 2}}\nc: {{<<: *b}}\n"
    data = _load(text)
    assert data["b"] == {"x": 1, key: 2}
    assert data["c"] == {"x": 1, key: 2}


def test_anchor_defined_inside_a_merge() -> None:
    data = _load("a: &a {x: 1, y: 1}\nw: {<<: &b {<<: *a, y: 2}}\nz: *b\nq: {<<: *b, x: 5}\n")
    assert data["w"] == data["z"] == {"x": 1, "y": 2}
    assert data["q"] == {"x": 5, "y": 2}


def test_quoted_merge_key_is_a_plain_key() -> None:
    assert _load("c:\n  '<<': 1\n  <<: {a: 1}\n")["c"] == {"a": 1, "<<": 1}


# ------------------------------------------------------------------ bounds kept
def test_key_repeated_after_a_merge_is_still_a_duplicate() -> None:
    with pytest.raises(UsageError, match=r"f.yaml:5: .*duplicate key 'b' \(first on line 3\)"):
        _load("base: &b {a: 1}\nx:\n  b: 1\n  <<: *b\n  b: 2\n")


def test_merge_key_given_twice_is_a_duplicate() -> None:
    with pytest.raises(UsageError, match=r"f.yaml:5: .*duplicate key << \(first on line 4\)"):
        _load("a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n")


def test_duplicate_inside_a_merged_source_is_refused() -> None:
    with pytest.raises(UsageError, match=r"f.yaml:1: .*duplicate key 'x'"):
        _load("a: &a {x: 1, x: 2}\nc: {<<: *a}\n")


@pytest.mark.parametrize("value", ["3", "[1, 2]", "[{a: 1}, x]"])
def test_merging_something_else_than_mappings(value: str) -> None:
    with pytest.raises(UsageError, match="<< merges a mapping or a list of mappings"):
        _load(f"c:\n  <<: {value}\n")


def test_merge_bomb_is_refused_by_the_expansion_limit() -> None:
    text = "a: &a {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}\n"
    prev = "a"
    for name in "bcdefg":  # each merges the one before ten times: 10**7 pairs once flattened
        text += f"{name}: &{name} {{<<: [{', '.join([f'*{prev}'] * 10)}]}}\n"
        prev = name
    with pytest.raises(UsageError, match="aliases expand to more than 1,000,000 values"):
        _load(text)


# ------------------------------------------------------------------ through the readers
def test_site_profile_with_merge_keys_renders_as_written_out(cli, tmp_path: Path) -> None:
    # The container's variables are the host's plus one changed: `<<: *site_env`.
    merged = tmp_path / "merged.yaml"
    merged.write_text(
        DEV.replace(
            'env:\n  OMP_NUM_THREADS: "1"\n',
            'env: &site_env\n  OMP_NUM_THREADS: "1"\n  MY_SITE: "a"\n'
            "container:\n  runtime: bwrap\n  image: /\n  env:\n    <<: *site_env\n"
            '    MY_SITE: "inside"\n',
        )
    )
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        DEV.replace(
            'env:\n  OMP_NUM_THREADS: "1"\n',
            'env:\n  OMP_NUM_THREADS: "1"\n  MY_SITE: "a"\n'
            "container:\n  runtime: bwrap\n  image: /\n  env:\n"
            '    OMP_NUM_THREADS: "1"\n    MY_SITE: "inside"\n',
        )
    )
    a = cli("render", "tiny", "-c", str(merged))
    b = cli("render", "tiny", "-c", str(plain))
    assert a.code == 0, a.err
    assert b.code == 0, b.err
    assert a.out.replace(str(merged), "P") == b.out.replace(str(plain), "P")


def test_profile_with_a_key_repeated_after_a_merge(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(DEV + "burnin: {min_ratio: 0.4}\n")  # burnin given twice at the top
    line = _one_line(cli("render", "tiny", "-c", str(path)))
    assert f"{path}:" in line and "duplicate key 'burnin'" in line


def test_override_value_with_a_merge_key(cli) -> None:
    res = cli("render", "tiny", "-c", "dev", "-o", "cluster.env={<<: {A: '1', B: '1'}, B: '2'}")
    assert res.code == 0, res.err
    assert 'export A="1"\nexport B="2"\n' in res.out


def test_job_side_recipe_loader_accepts_merges(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("defaults: &d {lr: 1, wd: 2}\noptim:\n  <<: *d\n  lr: 3\n")
    assert read_mapping(path)["optim"] == {"lr": 3, "wd": 2}
    path.write_text("defaults: &d {lr: 1}\noptim:\n  lr: 2\n  <<: *d\n  lr: 3\n")
    with pytest.raises(UsageError, match=rf"{path}:5: .*duplicate key 'lr'"):
        read_mapping(path)


def test_the_docs_example_means_what_it_says() -> None:
    # docs/clusters.md shows a container env merged from the host's, one variable changed.
    from olmoctl.schemas.cluster import ContainerConfig

    text = (REPO / "docs" / "clusters.md").read_text()
    block = re.search(r"merge keys.*?```yaml\n(.*?)```", text, re.S)
    assert block is not None
    data = _load(block.group(1))
    assert data["container"]["env"] == {"OMP_NUM_THREADS": "1", "NCCL_SOCKET_IFNAME": "hsn"}
    assert data["env"]["OMP_NUM_THREADS"] == "7"
    ContainerConfig.model_validate(data["container"])
