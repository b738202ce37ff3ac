"""matplotlib for olmoctl's PNGs (plan --plot, the run card's loss curve), leaving nothing
behind: its font cache goes to a temporary folder (unless the user set MPLCONFIGDIR), and
the PNG is written like every other file (fileio: regular files only, atomically)."""

from __future__ import annotations

import importlib.util
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from olmoctl.fileio import atomic_write


def have_matplotlib() -> bool:
    """Without importing it (an import already writes matplotlib's config folder)."""
    return importlib.util.find_spec("matplotlib") is not None


@contextmanager
def pyplot() -> Iterator[Any]:
    """matplotlib.pyplot on the Agg backend (ImportError if matplotlib is missing)."""
    tmp = None
    if "MPLCONFIGDIR" not in os.environ:  # else matplotlib writes ~/.cache/matplotlib
        tmp = tempfile.TemporaryDirectory(prefix="olmoctl-mpl-")
        os.environ["MPLCONFIGDIR"] = tmp.name
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        yield plt
    finally:
        if tmp is not None:
            os.environ.pop("MPLCONFIGDIR", None)
            tmp.cleanup()


def save_png(fig: Any, path: str | os.PathLike[str], label: str | None = None) -> None:
    """FIG as a PNG at PATH: drawn in memory, then written whole (never through a link)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write(Path(path), buf.getvalue(), label=label)
