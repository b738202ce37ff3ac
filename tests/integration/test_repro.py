"""Reproducibility on the real local Slurm: `launch --from` re-runs a tiny run with identical
per-step losses, and warns when a data file changed since the recorded run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import DevCluster, Olmoctl

pytestmark = pytest.mark.slurm


class Repro(Olmoctl):
    def launched(self, res: subprocess.CompletedProcess[str]) -> str:
        """The run name of a `launch ... --wait` that completed; its job is cleaned up."""
        first = res.stdout.split()
        if len(first) >= 3 and first[2].isdigit():
            self.cluster.submitted.append(int(first[2]))
        assert res.returncode == 0, (res.stdout, res.stderr)
        return first[0]

    def losses(self, run: str) -> list[tuple[int, float]]:
        lines = (self.runs / run / "events.jsonl").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        return [(e["step"], e["loss"]) for e in events if e["event"] == "step"]


@pytest.fixture
def olmoctl(dev_cluster: DevCluster, tmp_path: Path) -> Repro:
    return Repro(dev_cluster, tmp_path)


def test_launch_from_gives_identical_losses(olmoctl: Repro) -> None:
    orig = olmoctl.launched(
        olmoctl("launch", "tiny", "-c", "dev", "--name", "orig", "-o", olmoctl.root, "--wait")
    )
    res = olmoctl("launch", "--from", orig, "--wait")
    again = olmoctl.launched(res)
    assert again == "orig-2" and "from orig" in res.stdout
    # Nothing changed in between (code warnings aside: others may edit this checkout).
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert not [w for w in warnings if "code:" not in w], res.stderr

    a, b = olmoctl.losses(orig), olmoctl.losses(again)
    assert [s for s, _ in a] == list(range(1, 41))
    assert a == b  # bit for bit: the same floats, step by step

    shown = json.loads(olmoctl("show", again, "--json").stdout)
    first = json.loads(olmoctl("show", orig, "--json").stdout)
    assert shown["from"] == {"run": orig, "overrides": []}
    assert shown["config_sha256"] == first["config_sha256"]
    assert shown["global_indices"]["sha256"] == first["global_indices"]["sha256"]
    assert shown["data"]["job"]["sha256"] == first["data"]["job"]["sha256"]
    assert shown["environment"]["versions"]["torch"] == first["environment"]["versions"]["torch"]
    (vs,) = [ln for ln in olmoctl("show", again).stdout.splitlines() if ln.startswith("vs ")]
    assert vs == "vs orig: same code, packages, devices, data and data order"

    # The script Slurm ran is what the record says, and nothing changed since it ran.
    script = olmoctl("show", orig, "--script").stdout
    assert script == (olmoctl.runs / orig / "scripts" / "attempt-1.sh").read_text()
    same = olmoctl("render", "--diff", orig)
    assert same.returncode == 0 and same.stdout == "" and "no difference" in same.stderr

    card = olmoctl("card", again, "--out", str(olmoctl.runs / "cards"))
    assert card.returncode == 0, card.stderr
    png = (olmoctl.runs / "cards" / f"{again}-loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    md = (olmoctl.runs / "cards" / f"{again}.md").read_text()
    assert "olmoctl launch --from orig" in md and "| COMPLETED |" in md


def test_changed_data_file_makes_launch_from_warn(olmoctl: Repro, tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"

    def tokenize(seed: int) -> Path:
        words = ["river", "stone", "lamp", "harbor", "winter", "garden", "bridge", "song"]
        n = 2000 + seed  # another size as well as other bytes
        text.write_text(" ".join(words[(i * 7 + seed) % len(words)] for i in range(n)) + ".")
        out = tmp_path / "tokens.npy"
        subprocess.run(
            [sys.executable, "-m", "olmoctl.train.data.tokenize", str(text), "--out", str(out)],
            check=True,
            capture_output=True,
        )
        return out

    tokens = tokenize(0)
    data = [
        "-o",
        f"data.paths=[{tokens}]",
        "-o",
        "data.synthetic=false",
        "-o",
        "train.max_steps=5",
    ]
    orig = olmoctl.launched(
        olmoctl("launch", "tiny", "-c", "dev", "--name", "d", "-o", olmoctl.root, *data, "--wait")
    )
    recorded = json.loads(olmoctl("show", orig, "--json").stdout)
    (fp,) = recorded["data"]["job"]["files"]
    assert (fp["name"], fp["size"]) == ("tokens.npy", tokens.stat().st_size)

    tokenize(1)  # the data file changes under the recorded run
    res = olmoctl("launch", "--from", orig, "--wait")
    again = olmoctl.launched(res)
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert any(
        f"differs from {orig}: data file tokens.npy: size {fp['size']} -> " in w
        and f"sha256 {fp['sha256'][:12]} -> " in w
        for w in warnings
    ), res.stderr
    assert not [w for w in warnings if "packages:" in w], warnings
    shown = olmoctl("show", again).stdout
    assert "vs d: data file tokens.npy" in shown, shown
