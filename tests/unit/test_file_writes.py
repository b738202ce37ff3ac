"""Files olmoctl writes at a path the user chose go into regular files only: a device, FIFO,
socket, directory or symlink there is refused (one line, exit 2) and left exactly as it was
(issue 14, items 6 and 15). Real device nodes (mknod, as root), FIFOs and links."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from olmoctl.errors import UsageError
from olmoctl.fileio import atomic_write

REPO = Path(__file__).resolve().parents[2]


def _char_device(p: Path) -> None:
    os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


def _directory(p: Path) -> None:
    p.mkdir()


def _symlink(p: Path) -> None:
    (p.parent / "target.sh").write_text("keep me\n")
    p.symlink_to(p.parent / "target.sh")


def _dangling(p: Path) -> None:
    p.symlink_to(p.parent / "nowhere.sh")


TARGETS: dict[str, tuple[Callable[[Path], None], str]] = {
    "char-device": (_char_device, "character device"),
    "fifo": (_fifo, "FIFO"),
    "socket": (_socket, "socket"),
    "directory": (_directory, "directory"),
    "symlink": (_symlink, "symbolic link"),
    "dangling-symlink": (_dangling, "symbolic link"),
}


def _state_of(p: Path) -> tuple[int, int, int]:
    st = os.lstat(p)
    return st.st_mode, st.st_ino, st.st_rdev


@pytest.mark.parametrize("kind", sorted(TARGETS))
@pytest.mark.parametrize(
    "argv",
    [
        ["render", "tiny", "-c", "dev", "--out"],
        ["plan", "tiny", "-c", "lumi", "--seeds", "2", "--plot"],
    ],
    ids=["render--out", "plan--plot"],
)
def test_non_regular_target_is_refused_and_kept(cli, tmp_path: Path, kind: str, argv) -> None:
    make, words = TARGETS[kind]
    target = tmp_path / "out.sh"
    make(target)
    before = _state_of(target)
    res = cli(*argv, str(target))
    assert res.code == 2, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and words in lines[0], res.err
    assert argv[-1] in lines[0]  # names the option
    assert _state_of(target) == before
    if kind == "symlink":
        assert (tmp_path / "target.sh").read_text() == "keep me\n"
    assert not (tmp_path / "nowhere.sh").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp


def test_render_out_replaces_a_regular_file(cli, tmp_path: Path) -> None:
    out = tmp_path / "job.sh"
    out.write_text("old\n")
    other = tmp_path / "other-name.sh"
    os.link(out, other)  # a second name keeps the old content: the rename replaces one name
    res = cli("render", "tiny", "-c", "dev", "--out", str(out))
    assert res.code == 0, res
    assert out.read_text().startswith("#!/bin/bash") and other.read_text() == "old\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_atomic_write_refuses_non_regular_files(tmp_path: Path, kind: str) -> None:
    make, words = TARGETS[kind]
    target = tmp_path / "f"
    make(target)
    before = _state_of(target)
    with pytest.raises(UsageError, match=words):
        atomic_write(target, "x")
    assert _state_of(target) == before


def test_card_files_are_written_only_as_regular_files(tmp_path: Path) -> None:
    # the card's RUN.md / RUN.json / RUN-loss.png go through the same rule (core.card.write)
    out = tmp_path / "card"
    out.mkdir()
    (out / "r.md").symlink_to(tmp_path / "elsewhere.md")
    with pytest.raises(UsageError, match="symbolic link"):
        atomic_write(out / "r.md", "card")
    assert not (tmp_path / "elsewhere.md").exists()


def test_plan_plot_leaves_no_matplotlib_cache(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
    }
    env.update(HOME=str(home), OLMOCTL_STATE_DIR=str(tmp_path / "state"), PYTHONPATH=str(REPO))
    png = tmp_path / "g.png"
    res = subprocess.run(
        [sys.executable, "-m", "olmoctl", "plan", "tiny", "-c", "lumi", "--seeds", "2",
         "--plot", str(png)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert list(home.iterdir()) == []  # no ~/.cache/matplotlib, no ~/.config/matplotlib
    assert not (tmp_path / "state").exists()
