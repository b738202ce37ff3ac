"""Reproducibility records: record.json, show, launch --from (planning), render --diff, card,
and the bounded file fingerprint. Scheduler faked; the real Slurm runs are in
tests/integration/test_repro.py."""

from __future__ import annotations

import difflib
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from olmoctl import provenance
from olmoctl.backends.slurm import SlurmBackend
from olmoctl.core.launch import repro
from olmoctl.core.launch import submit as launch
from olmoctl.core.records import record
from olmoctl.errors import UsageError
from olmoctl.store import Store
from olmoctl.train.data.tokenize import tokenize_documents, write_tokens


class FakeBackend(SlurmBackend):
    def __init__(self) -> None:
        self.next_id = 100

    def check_reachable(self, spec) -> None:
        return None

    def submit(self, spec, script):
        self.next_id += 1
        return str(self.next_id), script


def _launch(store: Store, runs: Path, name: str, *extra: str):
    spec = launch.prepare(
        store,
        "tiny",
        "dev",
        nodes=1,
        name=name,
        time_limit=None,
        overrides=[f"cluster.runs_root={runs}", *extra],
    )
    return launch.submit_attempt(store, spec, FakeBackend(), new_run=True)


def _token_file(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    docs = [bytes(rng.integers(97, 123, size=200, dtype=np.uint8)) for _ in range(40)]
    return write_tokens(tokenize_documents(docs), path)


# ------------------------------------------------------------------------ record at launch
def test_launch_writes_record_and_indexes_it(user_env, tmp_path: Path) -> None:
    store = Store()
    tok = _token_file(tmp_path / "tok.npy", 0)
    done = _launch(store, tmp_path / "runs", "r1", f"data.paths=[{tok}]", "data.synthetic=false")
    rec = json.loads((tmp_path / "runs" / "r1" / "record.json").read_text())
    assert rec == record.stored(store, "r1")
    assert rec["config"] == done.spec.model_dump(mode="json")
    assert rec["seed"] == 6198 and rec["overrides"] == list(done.spec.overrides)
    sub = rec["submissions"][0]
    assert sub["attempt"] == 1 and sub["script_sha256"] == record.sha256_text(done.script)
    assert sub["code"]["version"] and len(sub["code"]["source_sha256"]) == 64
    git = sub["code"]["git"]
    if git and git["dirty"]:  # a checkout with local changes keeps them next to the run
        diff = (tmp_path / "runs" / "r1" / git["diff_file"]).read_text()
        assert record.sha256_text(diff) == git["diff_sha256"]
    files = rec["data"]["at_launch"]["files"]
    assert [(f["name"], f["size"], f["method"]) for f in files] == [
        ("tok.npy", tok.stat().st_size, "sha256")
    ]
    row = store.connect().execute("SELECT * FROM run_records WHERE run_name='r1'").fetchone()
    assert row["seed"] == 6198 and row["data_sha256"] == rec["data"]["at_launch"]["sha256"]


def test_launch_from_plans_recorded_config_with_overrides_on_top(user_env, tmp_path: Path) -> None:
    store = Store()
    runs = tmp_path / "runs"
    first = _launch(store, runs, "r1", "optim.lr=1e-3")
    plan = repro.plan_from(store, "r1", name=None, overrides=["train.max_steps=7"])
    assert plan.spec.name == "r1-2" and plan.spec.run_dir == f"{runs}/r1-2"
    assert plan.spec.recipe.optim.lr == 1e-3 and plan.spec.recipe.train.max_steps == 7
    assert plan.spec.overrides == [*first.spec.overrides, "train.max_steps=7"]
    unchanged = first.spec.recipe.model_dump(exclude={"train"})
    assert plan.spec.recipe.model_dump(exclude={"train"}) == unchanged
    repro.launch_from(store, plan, FakeBackend())
    rec = record.stored(store, "r1-2")
    assert rec["from"] == {"run": "r1", "overrides": ["train.max_steps=7"]}
    # An unchanged re-run has the same config hash: name and folder are not config.
    same = repro.plan_from(store, "r1", name="r1-same", overrides=[])
    assert record.config_sha256(same.spec) == record.stored(store, "r1")["config_sha256"]
    with pytest.raises(UsageError, match="already exists"):
        repro.plan_from(store, "r1", name="r1-2", overrides=[])


def test_launch_from_warns_about_changed_data(user_env, tmp_path: Path) -> None:
    store = Store()
    tok = _token_file(tmp_path / "tok.npy", 0)
    _launch(store, tmp_path / "runs", "r1", f"data.paths=[{tok}]", "data.synthetic=false")

    def data_warnings() -> list[str]:
        diffs = repro.plan_from(store, "r1", name=None, overrides=[]).differences
        return [d for d in diffs if d.startswith("data")]

    assert data_warnings() == []
    size = tok.stat().st_size
    _token_file(tmp_path / "tok.npy", 1)  # same size, other tokens
    (warning,) = data_warnings()
    assert warning.startswith(f"data file tok.npy: size {size} -> {size}, sha256 ")
    assert warning.endswith("(sha256)")


def test_launch_from_cli_refuses_recipe_and_cluster(cli) -> None:
    res = cli("launch", "tiny", "--from", "r1")
    assert res.code == 2 and "--from r1 takes recipe, cluster and nodes" in res.err
    res = cli("launch", "--from", "nope")
    assert res.code == 2 and "no run named 'nope'" in res.err


# ------------------------------------------------------------------------ render --diff
def test_render_diff_shows_exactly_the_changed_lines(cli, tmp_path: Path) -> None:
    store = Store()
    done = _launch(store, tmp_path / "runs", "r1")
    store.close()

    res = cli("render", "--diff", "r1", "-o", "cluster.cpus_per_task=4")
    assert res.code == 0, res.err
    new = done.script.replace("--cpus-per-task=1", "--cpus-per-task=4")
    assert new != done.script
    expected = "".join(
        difflib.unified_diff(
            done.script.splitlines(keepends=True),
            new.splitlines(keepends=True),
            "r1/attempt-1.sh",
            "r1/now.sh",
        )
    )
    assert res.out == expected
    changed = [ln for ln in res.out.splitlines() if ln[:1] in "+-"]
    assert changed == [
        "--- r1/attempt-1.sh",
        "+++ r1/now.sh",
        "-#SBATCH --cpus-per-task=1",
        "+#SBATCH --cpus-per-task=4",
        "-  --cpus-per-task=1 \\",  # the burn-in step
        "+  --cpus-per-task=4 \\",
        "-  --cpus-per-task=1 \\",  # the training step
        "+  --cpus-per-task=4 \\",
    ]
    assert "cluster.cpus_per_task: 1 -> 4" in res.err

    same = cli("render", "--diff", "r1", "--attempt", "1")
    assert same.code == 0 and same.out == "" and "no difference" in same.err

    lr = cli("render", "--diff", "r1", "-o", "optim.lr=1e-4")  # not in the script: config only
    assert lr.out == "" and "recipe.optim.lr: 0.003 -> 0.0001" in lr.err

    bad = cli("render", "--diff", "r1", "--attempt", "2")
    assert bad.code == 2 and "no attempt 2" in bad.err


def test_render_diff_cluster(cli) -> None:
    res = cli("render", "tiny", "--diff-cluster", "dev", "a100")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[:2] == ["--- dev/tiny.sh", "+++ a100/tiny.sh"]
    assert "-#SBATCH --partition=dev" in lines and "+#SBATCH --partition=gpu" in lines
    assert "+#SBATCH --gpus-per-node=8" in lines
    assert not any(ln.startswith(("-#SBATCH --job-name", "+#SBATCH --job-name")) for ln in lines)
    assert cli("render", "--diff-cluster", "dev", "a100").code == 2


# ------------------------------------------------------------------------ a fabricated run
def _fabricate_job(run_dir: Path, job_id: str, steps: int = 30) -> dict:
    """What the job would leave behind: data, global_indices.npy + meta, events.jsonl."""
    synth = run_dir / "data" / "synthetic.npy"
    _token_file(synth, 3)
    indices = np.random.default_rng(6198).permutation(200).astype(np.uint32)
    np.save(run_dir / "global_indices.npy", indices)
    meta = {"seed": 6198, "num_instances": 200, "seq_len": 64, "length": 200}
    (run_dir / "global_indices.json").write_text(json.dumps(meta))
    code = provenance.code_version()
    started = {
        "ts": 1000.0,
        "event": "started",
        "job_id": job_id,
        "attempt": 0,
        "start_step": 0,
        "nodes": ["node1"],
        "world_size": 1,
        "versions": {
            "python": "3.11.7",
            "torch": "2.13.0+cu126",
            "cuda": "12.6",
            "rocm": None,
            "numpy": "2.4.6",
        },
        "devices": {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "per_node": 1, "count": 1},
        "seed": 6198,
        "code": code,
        "data": provenance.fingerprint_files([synth]),
        "global_indices": provenance.fingerprint_file(run_dir / "global_indices.npy"),
    }
    evs = [started]
    for s in range(1, steps + 1):
        evs.append({"ts": 1000.0 + s, "event": "step", "step": s, "loss": 5.5 * math.exp(-s / 12)})
        if s % 10 == 0:
            evs.append({"ts": 1000.2 + s, "event": "checkpoint_saved", "step": s})
    evs.append({"ts": 1000.5 + steps, "event": "exiting", "reason": "completed", "step": steps})
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))
    return started


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return struct.unpack(">II", data[16:24])


def test_card_writes_png_and_markdown_naming_every_record_item(cli, tmp_path: Path) -> None:
    store = Store()
    done = _launch(store, tmp_path / "runs", "r1", "optim.lr=1e-3")
    run_dir = tmp_path / "runs" / "r1"
    started = _fabricate_job(run_dir, done.job_id)
    with store.tx() as tx:
        for a in tx.attempts("r1"):
            tx.update_attempt(
                a.id, state="COMPLETED", submitted_at=990, started_at=995, ended_at=1032
            )
    store.close()

    out = tmp_path / "card"
    res = cli("card", "r1", "--out", str(out))
    assert res.code == 0, res.err
    png = (out / "r1-loss.png").read_bytes()
    width, height = _png_size(png)
    assert 400 <= width <= 2000 and 300 <= height <= 1500
    assert 10_000 < len(png) < 1_000_000  # a drawn curve with axes, not an empty canvas

    md = (out / "r1.md").read_text()
    rec = json.loads((out / "r1.json").read_text())["record"]
    git = started["code"]["git"] or {}
    gi = started["global_indices"]
    must = {
        "config sha256": rec["config_sha256"],
        "override": "`optim.lr=1e-3`",
        "script": "scripts/attempt-1.sh",
        "script sha256": record.sha256_text(done.script),
        "olmoctl version": started["code"]["version"],
        "source sha256": started["code"]["source_sha256"],
        "git commit": git.get("commit") or "not a git checkout",
        "python": "| Python | 3.11.7 |",
        "torch": "| torch | 2.13.0+cu126 |",
        "cuda": "| CUDA | 12.6 |",
        "rocm": "| ROCm | - |",
        "numpy": "| numpy | 2.4.6 |",
        "devices": "1 x NVIDIA H100 80GB HBM3",
        "seed": "| seed | 6198 |",
        "data file": str(run_dir / "data" / "synthetic.npy"),
        "data size": str(started["data"]["files"][0]["size"]),
        "data hash": started["data"]["files"][0]["sha256"],
        "data fingerprint": started["data"]["sha256"],
        "indices hash": gi["sha256"],
        "indices size": f"{gi['size']} bytes",
        "attempt": f"| 1 | {done.job_id} |",
        "goodput": "## Goodput",
        "plot": "![training loss](r1-loss.png)",
        "reproduce": "olmoctl launch --from r1",
    }
    missing = {k: v for k, v in must.items() if v not in md}
    assert not missing, missing
    assert "Not computable" not in md
    card = json.loads((out / "r1.json").read_text())
    g = card["goodput"]  # 30 steps of ~1 s (saves excluded) over 42 s since submission
    assert g["wall_s"] == 42.0 and g["queued_s"] == 5.0 and 0.65 < g["goodput"] < 0.75
    assert len(card["losses"]) == 30 and card["plot"] == "r1-loss.png"


def test_show_prints_each_recorded_item(cli, tmp_path: Path) -> None:
    store = Store()
    done = _launch(store, tmp_path / "runs", "r1")
    _fabricate_job(tmp_path / "runs" / "r1", done.job_id)
    store.close()

    res = cli("show", "r1")
    assert res.code == 0, res.err
    for word in (
        "config",
        "seed       6198",
        "torch 2.13.0+cu126",
        "global_indices.npy",
        "synthetic.npy",
        "attempt 1",
    ):
        assert word in res.out, word
    assert cli("show", "r1", "--script").out == done.script
    assert cli("show", "r1", "--script", "--attempt", "1").out == done.script
    cfg = cli("show", "r1", "--config")
    assert "learning" not in cfg.err and "lr: 0.003" in cfg.out and "runs_root:" in cfg.out
    env = cli("show", "r1", "--env")
    assert "cuda 12.6" in env.out and "NVIDIA H100 80GB HBM3" in env.out
    js = json.loads(cli("show", "r1", "--json").out)
    assert js["global_indices"]["num_instances"] == 200
    assert cli("show", "r1", "--config", "--env").code == 2


# ------------------------------------------------------------------------ fingerprints
def test_fingerprint_is_bounded_and_sees_edges_and_size(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    size = 20 * 1024 * 1024
    big.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    fp = provenance.fingerprint_file(big)
    assert fp["method"] == "sampled-v1" and fp["size"] == size
    read = sum(n for _, n in provenance.sample_offsets(size))
    assert read == 2 * 1024 * 1024 + 16 * 64 * 1024  # 3 MiB at most, whatever the size

    def flipped(offset: int) -> str:
        data = bytearray(big.read_bytes())
        data[offset] ^= 0xFF
        other = tmp_path / "other.bin"
        other.write_bytes(bytes(data))
        return provenance.fingerprint_file(other)["sha256"]

    assert flipped(10) != fp["sha256"]  # first MiB
    assert flipped(size - 10) != fp["sha256"]  # last MiB
    start, _ = provenance.sample_offsets(size)[5]
    assert flipped(start + 7) != fp["sha256"]  # a sampled block
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    assert provenance.fingerprint_file(small)["sha256"] == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert "error" in provenance.fingerprint_file(tmp_path / "missing")
