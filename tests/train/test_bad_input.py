"""Bad input: one line on stderr naming the cause, exit status 2, an `exiting` event when
the run directory is known, and no checkpoint (complete or partial) left behind by it.
Runs the job in-process (one rank) through its command-line entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from olmoctl.train.data import tokens as data_mod
from olmoctl.train.data.tokenize import write_tokens
from olmoctl.train.run import main
from olmoctl.train.runtime.exit_codes import EXIT_BAD_INPUT
from tests.train.helpers import events, tiny, write_spec


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def assert_one_line(code: int, err: str, expected: str) -> None:
    assert code == EXIT_BAD_INPUT, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("olmoctl.train: error: "), err
    assert expected in lines[0], lines[0]


def recipe_file(tmp_path: Path, recipe: dict[str, Any]) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def token_file(tmp_path: Path, n: int, bad_at: int | None = None) -> Path:
    tokens = (np.arange(n) % 200).astype(np.uint16)
    if bad_at is not None:
        tokens[bad_at] = 300
    return write_tokens(tokens, tmp_path / "tokens.npy")


def with_data(path: Path, **kw: Any) -> dict[str, Any]:
    return tiny(**{"data.synthetic": False, "data.paths": [str(path)], **kw})


def test_heads_not_dividing_d_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path / "run", tiny())
    data = json.loads(spec.read_text())
    data["recipe"]["model"]["n_heads"] = 5
    spec.write_text(json.dumps(data))
    code, err = run(capsys, str(spec))
    assert_one_line(code, err, "model.d_model (64) must be divisible by model.n_heads (5)")
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "tokens.npy: not found"),
        ("directory", "cannot read"),
        ("short", "train.seq_len (64) is longer than the data"),
        ("fewer than a batch", "fewer than one global batch (48)"),
        ("token id", "token id 300 at position 777 is not below model.vocab_size (257)"),
        ("batch", "train.global_batch_size (48) is not divisible by world size x "),
    ],
)
def test_bad_data_and_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    path = tmp_path / "tokens.npy"
    kw: dict[str, Any] = {}
    if case == "directory":
        path.mkdir()
    elif case == "short":
        token_file(tmp_path, 50)
    elif case == "fewer than a batch":
        token_file(tmp_path, 64 * 47)
    elif case == "token id":
        token_file(tmp_path, 64 * 100, bad_at=777)
    elif case == "batch":
        token_file(tmp_path, 64 * 100)
        kw["train.micro_batch_size"] = 5
    run_dir = tmp_path / "run"
    code, err = run(
        capsys, str(recipe_file(tmp_path, with_data(path, **kw))), "--run-dir", str(run_dir)
    )
    assert_one_line(code, err, expected)
    assert not (run_dir / "checkpoints").exists()
    last = events(run_dir)[-1]
    assert (last["event"], last["reason"], last["exit_status"]) == ("exiting", "error", 2)
    assert expected in last["error"]


def test_token_id_found_mid_run_stops_before_any_partial_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_mod, "SCAN_LIMIT_TOKENS", 0)  # as if the data were huge
    # 96 instances, batches of 48: put the bad token in an instance of step 2's batch.
    seed = tiny()["train"]["seed"]
    inst = int(data_mod.build_global_indices(96, 4 * 48, seed)[60])
    path = token_file(tmp_path, 64 * 96, bad_at=64 * inst + 3)
    recipe = with_data(path, **{"train.max_steps": 4, "train.micro_batch_size": 48,
                                "checkpoint.interval_steps": 1})  # fmt: skip
    run_dir = tmp_path / "run"
    code, err = run(capsys, str(recipe_file(tmp_path, recipe)), "--run-dir", str(run_dir))
    bad_step = 2
    assert_one_line(
        code, err, f"tokens.npy: token id 300 in instance {inst} (the batch of step {bad_step})"
    )
    # The bad batch is seen (all-reduced) at the end of step 1, before its save: it stops there.
    assert not (run_dir / "checkpoints").exists()
    steps = [e["step"] for e in events(run_dir) if e["event"] == "step"]
    assert steps == [1] and events(run_dir)[-1]["step"] == 1


def test_checkpoint_from_another_model_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    small = tiny(
        **{"train.max_steps": 2, "train.micro_batch_size": 48, "checkpoint.interval_steps": 2}
    )
    assert main([str(write_spec(run_dir, small))]) == 0
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    wider = tiny(**{"train.max_steps": 4, "model.d_model": 128, "train.micro_batch_size": 48})
    code, err = run(capsys, str(write_spec(run_dir, wider)))
    assert_one_line(code, err, "was written for a different model shape (d_model 64 != 128)")
    assert (
        sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before == ["step_00000002"]
    )


def test_unreadable_or_incomplete_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_line(*run(capsys, str(tmp_path / "nope.json")), "nope.json: not found")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    assert_one_line(*run(capsys, str(bad), "--run-dir", str(tmp_path)), "malformed YAML")
    recipe = recipe_file(tmp_path, tiny())
    assert_one_line(*run(capsys, str(recipe)), "is a recipe: give --run-dir DIR")


def test_a_key_given_twice_is_refused_in_a_recipe_and_a_spec(capsys, tmp_path: Path) -> None:
    """The job reads its recipe/spec with the launcher's rules: plain YAML and JSON keep the
    last of two equal keys silently, which would train something other than what was read."""
    text = yaml.safe_dump(tiny()).replace("train:\n", "train:\n  max_steps: 5\n", 1)
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    code, err = run(capsys, str(path), "--run-dir", str(tmp_path / "run"))
    assert_one_line(code, err, "duplicate key 'max_steps' (first on line")
    spec = write_spec(tmp_path / "r", tiny())
    raw = spec.read_text()
    spec.write_text(raw.replace('{"name":', '{"nodes": 3, "name":', 1) if '{"name":' in raw
                    else raw.replace("{", '{"nodes": 3, ', 1))  # fmt: skip
    code, err = run(capsys, str(spec))
    assert_one_line(code, err, "duplicate key 'nodes'")
    assert not (tmp_path / "run").exists()
