"""Sweeps: a grid and/or random samples of overrides become ordinary runs SWEEP-0..n.

Every point is resolved (validated) before anything is recorded or submitted. Submission
returns at once:
- single-node points of one shape go as Slurm job arrays (`--array=0-K%P`), chunks of at
  most the cluster's `max_array_size`, each chunk after the previous one
  (`--dependency=afterany`), so Slurm itself keeps at most P points running;
- otherwise (multi-node points, several shapes, `--no-array`, a local cluster) every point
  is its own job with at most P in flight: `advance()` (from `olmoctl sweep --continue` or a
  future `watch`) submits more as points end.
Array tasks run a small dispatcher that executes the point's own rendered script, so each
point's `scripts/attempt-1.sh` is exactly what `olmoctl render` prints for it.

Modules: spec (definition, parsing, sweep files, expansion), points (validation, naming,
shapes, array or jobs), arrays (job-array scripts and submission), rows (the sweeps row),
progress (create, advance, cancel), views (status table, dry run). The names below are the
package's API: callers import `olmoctl.core.sweep` and use them from here.
"""

from olmoctl.core.sweep.arrays import chunks, render_array, sweep_dir
from olmoctl.core.sweep.points import Plan, Point, plan, shape
from olmoctl.core.sweep.progress import Created, Progress, advance, cancel, create
from olmoctl.core.sweep.rows import WAITING, get, point_names
from olmoctl.core.sweep.spec import (
    DISTRIBUTIONS,
    MAX_POINTS,
    Definition,
    Sample,
    SweepFile,
    definition,
    expand,
    load_file,
    parse_grid,
    parse_sample,
    parse_samples,
    point_overrides,
    split_values,
)
from olmoctl.core.sweep.views import dry_run, table

__all__ = [
    "DISTRIBUTIONS",
    "MAX_POINTS",
    "WAITING",
    "Created",
    "Definition",
    "Plan",
    "Point",
    "Progress",
    "Sample",
    "SweepFile",
    "advance",
    "cancel",
    "chunks",
    "create",
    "definition",
    "dry_run",
    "expand",
    "get",
    "load_file",
    "parse_grid",
    "parse_sample",
    "parse_samples",
    "plan",
    "point_names",
    "point_overrides",
    "render_array",
    "shape",
    "split_values",
    "sweep_dir",
    "table",
]
