"""Read the metrics sinks' files back with each tool's own reader: TensorBoard's
EventAccumulator, and for a W&B offline run `wandb leet inspect --json` (wandb-core's reader of
the run's .wandb transaction log; wandb before 0.2x shipped a Python reader instead,
wandb.sdk.internal.datastore, used when the command is missing)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.train.helpers import HANG_GUARD_S, PY

NO_TB = "tensorboard is not installed (pip install 'olmoctl[tensorboard]')"
NO_WANDB = "wandb is not installed (pip install 'olmoctl[wandb]')"


def tb_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] as TensorBoard shows it (purged steps left out)."""
    acc_mod = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator", reason=NO_TB
    )
    acc = acc_mod.EventAccumulator(str(log_dir), size_guidance={acc_mod.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def wandb_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of one offline run directory (wandb/offline-run-*), as JSON objects with
    "type" and, for history rows, "history": {"item": {key: value}, "step": {"num": N}}."""
    pytest.importorskip("wandb", reason=NO_WANDB)
    res = subprocess.run(
        [PY, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    if res.returncode == 0:
        return [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    try:
        return _datastore_records(run_dir)
    except ImportError:
        raise AssertionError(f"wandb leet inspect failed: {res.stderr[-2000:]}") from None


def _datastore_records(run_dir: Path) -> list[dict[str, Any]]:
    from google.protobuf.json_format import MessageToDict
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore  # type: ignore[attr-defined]

    (path,) = run_dir.glob("run-*.wandb")
    ds = datastore.DataStore()
    ds.open_for_scan(str(path))
    out = []
    while (data := ds.scan_data()) is not None:
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        obj: dict[str, Any] = {"type": kind}
        if kind == "history":
            items = {
                i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item
            }
            obj["history"] = {"item": items, "step": {"num": rec.history.step.num}}
        else:
            obj[kind] = MessageToDict(getattr(rec, kind))
        out.append(obj)
    return out


def wandb_history(run_dir: Path) -> dict[int, dict[str, Any]]:
    """step -> the values logged at that step (one row per step in an offline run)."""
    rows: dict[int, dict[str, Any]] = {}
    for rec in wandb_records(run_dir):
        if rec["type"] == "history":
            h = rec["history"]
            rows.setdefault(int(h["step"].get("num", 0)), {}).update(h["item"])
    return rows


def wandb_run(run_dir: Path) -> dict[str, Any]:
    """The run record: id, project, config."""
    return next(r["run"] for r in wandb_records(run_dir) if r["type"] == "run")
