"""Fast in-process checks of the job's parts: model, schedule, data order, tokenizer,
environment detection, checkpoint folder rules, events."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from olmoctl.errors import UsageError
from olmoctl.schemas.contract import COMPLETE_MARKER, master_port_for, step_dir_name
from olmoctl.schemas.events import Step
from olmoctl.schemas.recipe import Recipe, ScheduleConfig
from olmoctl.train.checkpoint import dcp as ckpt
from olmoctl.train.data.tokenize import EOS, tokenize_documents
from olmoctl.train.data.tokenize import main as tokenize_main
from olmoctl.train.data.tokens import (
    BatchLoader,
    TokenDataset,
    build_global_indices,
    open_token_file,
)
from olmoctl.train.model.olmo import OLMo, flops_per_token, loss_fn
from olmoctl.train.model.optim import lr_at
from olmoctl.train.observe.events import EventLog, Heartbeat
from olmoctl.train.runtime.distributed import detect, expand_nodelist
from tests.train.helpers import poll, tiny


def model_cfg(**kw: object) -> Recipe:
    return Recipe.model_validate(tiny(**{f"model.{k}": v for k, v in kw.items()}))


@pytest.mark.parametrize("tying", [True, False])
def test_model_shape_params_and_causality(tying: bool) -> None:
    cfg = model_cfg(weight_tying=tying).model
    model = OLMo(cfg)
    model.init_weights(seed=1)
    assert sum(p.numel() for p in model.parameters()) == cfg.num_params()
    assert not any(n.endswith("bias") for n, _ in model.named_parameters())
    tokens = torch.randint(0, cfg.vocab_size, (2, 16))
    logits = model(tokens)
    assert logits.shape == (2, 16, cfg.embedding_size)
    changed = tokens.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % cfg.vocab_size
    assert torch.equal(model(changed)[:, :10], logits[:, :10])  # no peeking ahead
    assert abs(loss_fn(logits, tokens).item() - np.log(cfg.embedding_size)) < 0.5
    assert flops_per_token(cfg, 64) > 6 * cfg.num_params(embeddings=False)


def test_init_does_not_depend_on_construction_device() -> None:
    cfg = model_cfg().model
    a = OLMo(cfg)
    a.init_weights(seed=3)
    with torch.device("meta"):
        b = OLMo(cfg)
    b.to_empty(device="cpu")
    b.init_weights(seed=3)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na


def test_schedule_warmup_then_decay_to_the_floor() -> None:
    lin = ScheduleConfig(warmup_steps=10, decay="linear", final_lr_ratio=0.1)
    cos = ScheduleConfig(warmup_steps=10, decay="cosine", final_lr_ratio=0.1)
    assert lr_at(0, 1.0, lin, 110) == pytest.approx(0.1)
    assert lr_at(9, 1.0, lin, 110) == pytest.approx(1.0)
    assert lr_at(60, 1.0, lin, 110) == pytest.approx(0.55)
    assert lr_at(110, 1.0, lin, 110) == pytest.approx(0.1)
    assert lr_at(60, 1.0, cos, 110) == pytest.approx(0.55)
    assert lr_at(500, 1.0, cos, 110) == pytest.approx(0.1)
    assert lr_at(50, 1.0, ScheduleConfig(decay="constant"), 100) == 1.0


def make_tokens(tmp_path: Path, n: int, name: str = "t.npy", header: bool = False) -> Path:
    arr = (np.arange(n) % 250).astype(np.uint16)
    path = tmp_path / name
    if header:
        np.save(path, arr)
    else:
        arr.tofile(path)
    return path


def test_global_order_is_the_same_for_every_world_size(tmp_path: Path) -> None:
    files = [
        make_tokens(tmp_path, 64 * 40 + 7, "a.npy"),
        make_tokens(tmp_path, 64 * 25, "b.npy", True),
    ]
    ds = TokenDataset(files, "uint16", 64)
    assert ds.num_instances == 65
    indices = build_global_indices(ds.num_instances, 12 * 10, seed=6198)
    assert np.array_equal(indices, build_global_indices(ds.num_instances, 12 * 10, seed=6198))
    assert sorted(indices[:65].tolist()) == list(range(65))  # one epoch = a permutation
    assert indices.size == 130  # two epochs cover 120
    for step in (0, 3, 9):
        whole = ds.gather(indices[step * 12 : (step + 1) * 12].astype(np.int64))
        for world in (1, 2, 3, 4):
            parts = [BatchLoader(ds, indices, 12, r, world).local_batch(step) for r in range(world)]
            assert np.array_equal(np.concatenate(parts), whole)
    # Instance 40 is the first of file b (a's 7-token tail is dropped).
    assert np.array_equal(ds.gather(np.array([40])), np.arange(64)[None] % 250)


def test_token_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        open_token_file(tmp_path / "missing.npy", "uint16")
    odd = tmp_path / "odd.npy"
    odd.write_bytes(b"\x01\x02\x03")
    with pytest.raises(UsageError, match="not a whole number of uint16 tokens"):
        open_token_file(odd, "uint16")
    with pytest.raises(UsageError, match="cannot read"):
        open_token_file(tmp_path, "uint16")
    with pytest.raises(UsageError, match="longer than the data"):
        TokenDataset([make_tokens(tmp_path, 30)], "uint16", 64)


def test_tokenizer_round_trip_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tokenize_documents(["hé"]).tolist() == [104, 195, 169, EOS]
    (tmp_path / "a.txt").write_text("abc")
    (tmp_path / "b.txt").write_text("de")
    assert (
        tokenize_main(
            [str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "--out", str(tmp_path / "o.npy")]
        )
        == 0
    )
    tokens = open_token_file(tmp_path / "o.npy", "uint16")
    assert tokens.tolist() == [97, 98, 99, EOS, 100, 101, EOS]
    assert tokenize_main([str(tmp_path / "nope.txt"), "--out", str(tmp_path / "x.npy")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_environment_detection() -> None:
    assert detect({}).launcher == "single"
    srun = detect(
        {"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NNODES": "2",
         "SLURM_JOB_ID": "12345", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_RESTART_COUNT": "2"}
    )  # fmt: skip
    assert (srun.launcher, srun.rank, srun.world_size, srun.local_rank) == ("slurm", 3, 8, 1)
    assert (srun.local_world_size, srun.attempt, srun.job_id) == (4, 2, "12345")
    assert (srun.master_addr, srun.master_port) == ("gpu07", 20000 + 12345 % 20000)
    env = {"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1234"}
    assert (detect(env).master_addr, detect(env).master_port) == ("h", 1234)
    tr = detect(
        {
            "RANK": "1",
            "WORLD_SIZE": "2",
            "LOCAL_RANK": "1",
            "SLURM_PROCID": "0",
            "SLURM_NTASKS": "1",
        }
    )
    assert (tr.launcher, tr.rank, tr.world_size) == ("torchrun", 1, 2)
    assert expand_nodelist("n[1-2,10],x") == ["n1", "n2", "n10", "x"]
    assert master_port_for("41_3") == 20041


def test_only_marked_checkpoints_count(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"

    def fake(step: int, marker: bool = True, metadata: bool = True) -> Path:
        d = root / step_dir_name(step)
        d.mkdir(parents=True)
        if metadata:
            (d / ".metadata").write_bytes(b"x")
        if marker:
            (d / COMPLETE_MARKER).write_text(json.dumps({"step": step}))
        return d

    fake(10)
    fake(20)
    fake(30, marker=False)  # renamed, marker never written
    fake(40, metadata=False)
    (fake(50, marker=False) / COMPLETE_MARKER).write_text('{"step": 5')  # torn marker
    (root / ".tmp-step_00000060").mkdir()
    assert [c.step for c in ckpt.list_complete(root)] == [10, 20]
    assert ckpt.newest_complete(root).step == 20
    ckpt.remove_torn(root)
    assert sorted(p.name for p in root.iterdir()) == ["step_00000010", "step_00000020"]


def test_events_are_json_lines_and_heartbeat_runs_beside_a_busy_thread(tmp_path: Path) -> None:
    log = EventLog(tmp_path, enabled=True)
    log.emit(Step(step=1, loss=float("nan"), mfu=None))
    wake = threading.Event()
    hb = Heartbeat(log, 0.02, step=lambda: 7, wake=wake, pending_signal=lambda: None)
    hb.start()
    try:
        # The main thread only polls the file; the heartbeats come from the thread.
        poll(
            lambda: (tmp_path / "events.jsonl").read_text().count('"heartbeat"') >= 3,
            "three heartbeats",
        )
    finally:
        hb.stop()
        log.close()
    records = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert records[0]["loss"] is None and records[0]["event"] == "step"
    beats = [r for r in records if r["event"] == "heartbeat"]
    assert len(beats) >= 3 and all(r["step"] == 7 for r in beats)
    EventLog(tmp_path, enabled=False).emit(Step(step=2))  # other ranks write nothing
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == len(records)
